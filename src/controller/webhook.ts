/**
 * @module controller/webhook
 * The validating and conversion webhooks, served over TLS. The handlers are pure (review in, review out); the server
 * swaps its certificate in place when the keeper rotates it, so rotation needs no restart.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { FieldProblem } from '../errors/index.js';
import { formatProblem } from '../errors/index.js';

/** What the webhooks need from api/: validation and version conversion of our kinds. */
export interface WebhookEngine {
  validate(object: Record<string, unknown>): FieldProblem[];
  convert(object: Record<string, unknown>, toApiVersion: string): Record<string, unknown>;
}

export interface AdmissionReview {
  apiVersion: string;
  kind: 'AdmissionReview';
  request?: {
    uid: string;
    operation?: string;
    object?: Record<string, unknown> | null;
    oldObject?: Record<string, unknown> | null;
  };
  response?: { uid: string; allowed: boolean; status?: { code: number; reason?: string; message: string } };
}

export interface ConversionReview {
  apiVersion: string;
  kind: 'ConversionReview';
  request?: { uid: string; desiredAPIVersion: string; objects: Record<string, unknown>[] };
  response?: {
    uid: string;
    convertedObjects: Record<string, unknown>[];
    result: { status: 'Success' | 'Failure'; message?: string };
  };
}

/** Admits or denies one create/update; unchanged specs (finalizer or label edits) are always admitted. */
export function reviewAdmission(review: AdmissionReview, engine: WebhookEngine): AdmissionReview {
  const request = review.request;
  const uid = request?.uid ?? '';
  const allow = (): AdmissionReview => ({
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: { uid, allowed: true },
  });
  const object = request?.object;
  if (!object || (request.operation !== 'CREATE' && request.operation !== 'UPDATE')) return allow();
  const old = request.oldObject;
  if (old && JSON.stringify(old['spec']) === JSON.stringify(object['spec'])) return allow();
  const problems = engine.validate(object);
  if (problems.length === 0) return allow();
  const meta = object['metadata'] as { name?: string } | undefined;
  return {
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: false,
      status: {
        code: 422,
        reason: 'Invalid',
        message: `${String(object['kind'])} ${meta?.name ?? ''} is invalid: ${problems.map(formatProblem).join('; ')}`,
      },
    },
  };
}

/** Converts every object to the desired version; one failure fails the review (the API server retries). */
export function reviewConversion(review: ConversionReview, engine: WebhookEngine): ConversionReview {
  const request = review.request;
  const uid = request?.uid ?? '';
  try {
    const convertedObjects = (request?.objects ?? []).map((o) =>
      o['apiVersion'] === request!.desiredAPIVersion ? o : engine.convert(o, request!.desiredAPIVersion),
    );
    return {
      apiVersion: review.apiVersion,
      kind: 'ConversionReview',
      response: { uid, convertedObjects, result: { status: 'Success' } },
    };
  } catch (error) {
    return {
      apiVersion: review.apiVersion,
      kind: 'ConversionReview',
      response: {
        uid,
        convertedObjects: [],
        result: { status: 'Failure', message: (error as Error).message },
      },
    };
  }
}

export const VALIDATE_PATH = '/validate-serving-kserve-io';
export const CONVERT_PATH = '/convert';

export interface WebhookServer {
  port: number;
  /** Replaces the serving certificate for new connections. */
  setCertificate(cert: string, key: string): void;
  close(): Promise<void>;
}

/** Starts the HTTPS webhook server on `host:port` (port 0 = ephemeral). */
export async function startWebhookServer(options: {
  engine: WebhookEngine;
  cert: string;
  key: string;
  host?: string;
  port?: number;
  logger?: Logger;
}): Promise<WebhookServer> {
  const server = https.createServer({ cert: options.cert, key: options.key }, (req, res) => {
    const reply = (status: number, body: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    // The API server appends `?timeout=10s` to webhook URLs.
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'POST' || (path !== VALIDATE_PATH && path !== CONVERT_PATH))
      return reply(404, { message: 'not found' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as AdmissionReview | ConversionReview;
        if (path === VALIDATE_PATH) reply(200, reviewAdmission(body as AdmissionReview, options.engine));
        else reply(200, reviewConversion(body as ConversionReview, options.engine));
      } catch (error) {
        options.logger?.warn({ err: (error as Error).message, path: req.url }, 'bad webhook request');
        reply(400, { message: (error as Error).message });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', resolve);
  });
  return {
    port: (server.address() as AddressInfo).port,
    setCertificate(cert, key) {
      server.setSecureContext({ cert, key });
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
