/**
 * @module controller/webhook
 * The validating and conversion webhooks, served over TLS. The handlers are pure (review in, review out); the server
 * swaps its certificate in place when the keeper rotates it, so rotation needs no restart. One handler needs the
 * cluster: deleting a LLMInferenceServiceConfig is refused while services use it, and who uses it is looked up
 * live (`configUsers`, injected) when the review comes, so every replica answers alike, leader or not.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { FieldProblem } from '../errors/index.js';
import { formatProblem } from '../errors/index.js';
import {
  limitConnections,
  readRequestBody,
  type BodyBudget,
  type ConnectionLimits,
} from '../transport/index.js';

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

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
    name?: string;
    namespace?: string;
    object?: Record<string, unknown> | null;
    oldObject?: Record<string, unknown> | null;
  };
  response?: {
    uid: string;
    allowed: boolean;
    status?: { code: number; reason?: string; message: string };
    warnings?: string[];
  };
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
  if (old && sameJson(old['spec'], object['spec'])) return allow();
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

/** Equal as JSON; false for values too deeply nested to serialise (validation then says where). */
function sameJson(a: unknown, b: unknown): boolean {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return false;
  }
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

/** How many of the services that use a config a refused deletion names (the rest are counted). */
const NAMED_USERS = 10;

/**
 * Answers a DELETE of a LLMInferenceServiceConfig: refused while `users` (service keys, see `configUsers`) is not
 * empty, with a message that names them and says what to do. When the users could not be looked up (`users` is an
 * Error) the deletion is allowed with a warning — the same choice as the webhook's `failurePolicy: Ignore` (see
 * deploy/controller/webhook.yaml): losing a config is recoverable, a deletion that can never happen is not.
 */
export function reviewConfigDeletion(
  review: AdmissionReview,
  users: readonly string[] | Error,
): AdmissionReview {
  const request = review.request;
  const uid = request?.uid ?? '';
  const answer = (response: Omit<NonNullable<AdmissionReview['response']>, 'uid'>): AdmissionReview => ({
    apiVersion: review.apiVersion,
    kind: 'AdmissionReview',
    response: { uid, ...response },
  });
  if (request?.operation !== 'DELETE') return answer({ allowed: true });
  const what = `LLMInferenceServiceConfig ${request.namespace ?? ''}/${request.name ?? ''}`;
  if (users instanceof Error)
    return answer({
      allowed: true,
      warnings: [
        `could not check which LLMInferenceServices use ${what} (${users.message}); deleted without that check`,
      ],
    });
  if (users.length === 0) return answer({ allowed: true });
  const named = users.slice(0, NAMED_USERS).join(', ');
  const more = users.length > NAMED_USERS ? ` and ${users.length - NAMED_USERS} more` : '';
  return answer({
    allowed: false,
    status: {
      code: 409,
      reason: 'Conflict',
      message:
        `${what} is in use by ${users.length === 1 ? 'LLMInferenceService' : `${users.length} LLMInferenceServices`} ` +
        `${named}${more}: remove "${request.name ?? ''}" from their spec.baseRefs or delete them (a preset stops ` +
        `being used once no service's spec needs it), then delete the config again; ` +
        `status.referencedBy of the config lists the services`,
    },
  });
}

/** Who uses a config, as sorted `namespace/name` keys of LLMInferenceServices; looked up live. */
export type ConfigUsersLookup = (config: { namespace: string; name: string }) => Promise<string[]>;

export const VALIDATE_PATH = '/validate-serving-kserve-io';
/** Deletion protection of LLMInferenceServiceConfigs; its own path so that its webhook can fail open. */
export const CONFIG_DELETE_PATH = '/validate-serving-kserve-io-config-deletion';
export const CONVERT_PATH = '/convert';

export interface WebhookServer {
  port: number;
  /** Replaces the serving certificate for new connections. */
  setCertificate(cert: string, key: string): void;
  close(): Promise<void>;
}

/**
 * Largest request body per path. The API server sends at most its 3 MiB request limit twice (object and oldObject)
 * in an AdmissionReview; a ConversionReview carries a page of a list (kubectl pages by 500). Past the limit the
 * answer is 413 and the connection is closed unread: anyone who can reach the webhook Service can send a body.
 */
export const WEBHOOK_BODY_LIMITS: Readonly<Record<string, number>> = {
  [VALIDATE_PATH]: 8 * 1024 * 1024,
  [CONFIG_DELETE_PATH]: 8 * 1024 * 1024,
  [CONVERT_PATH]: 32 * 1024 * 1024,
};
/** Bodies of all requests being read at once: many large requests in parallel get 503 instead of the memory. */
const BUFFERED_BODY_LIMIT = 64 * 1024 * 1024;

/** Starts the HTTPS webhook server on `host:port` (port 0 = ephemeral). */
export async function startWebhookServer(options: {
  engine: WebhookEngine;
  /** Who uses a config; without it config deletions are always allowed. */
  configUsers?: ConfigUsersLookup;
  cert: string;
  key: string;
  host?: string;
  port?: number;
  logger?: Logger;
  /** Connections open at once (default 1,024 in all, 256 from one client address). */
  connectionLimits?: ConnectionLimits;
  /** A connection silent this long is closed (default 20 s). */
  idleTimeoutMs?: number;
}): Promise<WebhookServer> {
  const budget: BodyBudget = { used: 0, limit: BUFFERED_BODY_LIMIT };
  const server = https.createServer(
    {
      cert: options.cert,
      key: options.key,
      // The API server gives a webhook at most 30 s; a client slower than that is not the API server.
      headersTimeout: 10_000,
      requestTimeout: 30_000,
      handshakeTimeout: 10_000,
    },
    (req, res) => {
      const reply = (status: number, body: unknown): void => {
        if (res.headersSent || res.destroyed) return;
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      const refuse = (status: number, message: string): void => {
        options.logger?.warn({ path: req.url, status }, `bad webhook request: ${message}`);
        res.setHeader('connection', 'close');
        reply(status, { message });
        req.destroy();
      };
      // The API server appends `?timeout=10s` to webhook URLs.
      const path = (req.url ?? '').split('?')[0] ?? '';
      const limit = WEBHOOK_BODY_LIMITS[path];
      if (req.method !== 'POST' || limit === undefined) return reply(404, { message: 'not found' });
      readRequestBody(req, limit, budget).then(
        (read) => {
          if (read === 'too-large') return refuse(413, `request body larger than ${limit} bytes`);
          if (read === 'busy') return refuse(503, 'too many large requests at once; retry');
          let body: unknown;
          try {
            body = JSON.parse(read.toString('utf8'));
          } catch (error) {
            return refuse(400, (error as Error).message);
          }
          const review = body as AdmissionReview | ConversionReview;
          if (!isRecord(body) || !isRecord(review.request))
            return refuse(
              400,
              `expected a ${path === CONVERT_PATH ? 'ConversionReview' : 'AdmissionReview'} with a request`,
            );
          try {
            if (path === VALIDATE_PATH)
              return reply(200, reviewAdmission(review as AdmissionReview, options.engine));
            if (path === CONVERT_PATH)
              return reply(200, reviewConversion(review as ConversionReview, options.engine));
          } catch (error) {
            // A gap in validation must cost one answer, not the process that answers every tenant's requests.
            options.logger?.error({ err: (error as Error).message, path }, 'webhook review failed');
            return reply(500, { message: `review failed: ${(error as Error).message}` });
          }
          answerConfigDeletion(review as AdmissionReview).then(
            (answer) => reply(200, answer),
            (error: unknown) => reply(500, { message: `review failed: ${(error as Error).message}` }),
          );
        },
        // The client went away while sending: nobody to answer.
        () => undefined,
      );
    },
  );
  // Anyone who can reach the Service can open connections, and each idle TLS connection costs about 50 KB: at most
  // 1,024 at once, 256 from one client address (the API server's calls come from its own), and one silent for 20 s
  // is closed — before, 2,000 connections that sent nothing after the handshake stayed open, unbounded in number.
  // (Not 30 s: on Node 20 with these request timeouts, a 30 s inactivity timeout did not fire within 40 s.)
  limitConnections(server, { maxConnections: 1024, ...options.connectionLimits }, (error) =>
    options.logger?.warn({ err: (error as Error).message }, 'webhook connections refused'),
  );
  server.timeout = options.idleTimeoutMs ?? 20_000;
  async function answerConfigDeletion(review: AdmissionReview): Promise<AdmissionReview> {
    const { namespace, name } = review.request ?? {};
    if (!options.configUsers || !namespace || !name) return reviewConfigDeletion(review, []);
    const users = await options.configUsers({ namespace, name }).catch((error: unknown) => {
      options.logger?.warn(
        { err: (error as Error).message, config: `${namespace}/${name}` },
        'cannot look up the users of a config; allowing its deletion',
      );
      return error instanceof Error ? error : new Error(String(error));
    });
    return reviewConfigDeletion(review, users);
  }
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
