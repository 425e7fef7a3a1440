// An Envoy ext_proc server that decides next to nothing, for `npm run bench:peers -- --envoy-hop`: it answers with
// the messages the Endpoint Picker sends in Envoy's FULL_DUPLEX_STREAMED body mode, so that what it costs is the
// ext_proc hop itself — Envoy's gRPC stream and a stock gRPC server (grpc-go) — and not a routing decision. A request
// goes to the server a hash of its body's first 256 bytes names (requests that share a prefix meet the same cache, so
// the fleet answers as under a cache-aware router); without a body, round robin. Its twin on our transport is
// bench/null-ext-proc.ts.
//
// Usage: null-ext-proc <host:port>,<host:port>,… ; prints the port it listens on (127.0.0.1) on its first line.
package main

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extproc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
)

const destinationHeader = "x-gateway-destination-endpoint"

type prefixHash struct {
	extproc.UnimplementedExternalProcessorServer
	addresses []string
	next      atomic.Uint64
}

func (s *prefixHash) Process(stream extproc.ExternalProcessor_ProcessServer) error {
	var body []byte
	for {
		request, err := stream.Recv()
		if err != nil {
			return nil // the stream ended, either side
		}
		switch r := request.Request.(type) {
		case *extproc.ProcessingRequest_RequestHeaders:
			if r.RequestHeaders.EndOfStream {
				s.route(stream, nil, false)
			}
		case *extproc.ProcessingRequest_RequestBody:
			body = append(body, r.RequestBody.Body...)
			if r.RequestBody.EndOfStream {
				s.route(stream, body, true)
			}
		case *extproc.ProcessingRequest_RequestTrailers:
			stream.Send(&extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestTrailers{RequestTrailers: &extproc.TrailersResponse{}}})
		case *extproc.ProcessingRequest_ResponseHeaders:
			// The response observer's stream: answered, then ended, as the Endpoint Picker does.
			stream.Send(&extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extproc.HeadersResponse{}}})
			return nil
		case *extproc.ProcessingRequest_ResponseTrailers:
			stream.Send(&extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extproc.TrailersResponse{}}})
		}
	}
}

// route answers the request headers with the destination and, with a body, sends the body back (full duplex).
func (s *prefixHash) route(stream extproc.ExternalProcessor_ProcessServer, body []byte, withBody bool) {
	var address string
	if withBody {
		prefix := body[:min(256, len(body))]
		hash := uint32(0x811c9dc5) // FNV-1a, as the Node twin
		for _, b := range prefix {
			hash = (hash ^ uint32(b)) * 0x01000193
		}
		address = s.addresses[hash%uint32(len(s.addresses))]
	} else {
		address = s.addresses[s.next.Add(1)%uint64(len(s.addresses))]
	}
	mutation := &extproc.HeaderMutation{SetHeaders: []*core.HeaderValueOption{
		{Header: &core.HeaderValue{Key: destinationHeader, RawValue: []byte(address)}},
	}}
	stream.Send(&extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestHeaders{
		RequestHeaders: &extproc.HeadersResponse{Response: &extproc.CommonResponse{HeaderMutation: mutation, ClearRouteCache: true}},
	}})
	if !withBody {
		return
	}
	stream.Send(&extproc.ProcessingResponse{Response: &extproc.ProcessingResponse_RequestBody{
		RequestBody: &extproc.BodyResponse{Response: &extproc.CommonResponse{BodyMutation: &extproc.BodyMutation{
			Mutation: &extproc.BodyMutation_StreamedResponse{StreamedResponse: &extproc.StreamedBodyResponse{Body: body, EndOfStream: true}},
		}}},
	}})
}

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" {
		fmt.Fprintln(os.Stderr, "usage: null-ext-proc <host:port>,<host:port>,…")
		os.Exit(2)
	}
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	server := grpc.NewServer()
	extproc.RegisterExternalProcessorServer(server, &prefixHash{addresses: strings.Split(os.Args[1], ",")})
	fmt.Println(listener.Addr().(*net.TCPAddr).Port)
	if err := server.Serve(listener); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
