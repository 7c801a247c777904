// Types of skapi-wasm's JS API (SPEC §2): the same API as skapi-js for client-secret requests.

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH' | 'HEAD' | 'get' | 'post' | 'put' | 'delete' | 'patch' | 'head';

/** A JSON value, as request bodies and third-party answers are. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** A request body's value: JSON, or a file (sent with `Content-Type: multipart/form-data`). */
export type BodyValue = Json | Blob | ArrayBuffer | ArrayBufferView | BodyValue[] | { [key: string]: BodyValue };

export interface SkapiOptions {
  /** Base URL of a self-hosted skapi-server; all gateways point there. */
  endpoint?: string;
  /** Where Skapi's gateway JSON is found when there is no `endpoint` (default: Skapi's CDN). */
  cdn?: string;
}

export type RequestStatus = 'pending' | 'running' | 'resolved' | 'failed';

export type ClientSecretRequestParams<R = Json> = RequestParams<R> & ({ clientSecretName: string } | { secretName: string });

export interface RequestParams<R = Json> {
  /** Name of the client secret key saved in the service. */
  clientSecretName?: string;
  /** Skapi's newest name for `clientSecretName`. */
  secretName?: string;
  /** Third-party API endpoint URL; `$CLIENT_SECRET` may stand in its path or query. */
  url: string;
  method: HttpMethod;
  headers?: Record<string, string | number | boolean>;
  /**
   * Request body (POST, PUT, PATCH): JSON, or bytes (a Blob, ArrayBuffer or typed array) sent
   * as they are, with the Blob's type unless a `Content-Type` header says otherwise. Files
   * (`File`, `Blob`, bytes) inside an object, at any depth, need the header `Content-Type:
   * multipart/form-data`: the third party gets the fields as text, then each file with its
   * name, type and exact bytes (the boundary is the server's).
   */
  data?: { [key: string]: BodyValue } | Json[] | Blob | ArrayBuffer | ArrayBufferView;
  /** Query parameters (GET, DELETE, HEAD). */
  params?: { [key: string]: Json };
  /** Polling interval in ms; > 0 resolves with the final answer. Non-negative. */
  poll?: number | boolean;
  /** Lifetime of the record in ms (default 15 minutes). */
  expires?: number;
  /** Requests sharing url, method and queue run one at a time, in order. */
  queue?: string;
  onResponse?: (response: R | PendingRequest<R>, meta?: ResponseMeta) => void;
  onError?: (error: SkapiError) => void;
  /**
   * Keep and read the answer in chunks as the third party writes it (Skapi 2.x). Not sent to
   * the third party: its own `stream` belongs in `data`. A stream without `queue` gets one.
   */
  stream?: boolean;
  /** Skapi 2.x: kept with the request; only with `stream`. */
  realtime?: boolean;
  /** Called with each chunk of a streamed answer, once each, in order. */
  onStream?: OnStream;
  /** Aborting rejects at once (a `SkapiError` named `AbortError`, code `CANCELED`) and cancels the request on the server. */
  signal?: AbortSignal;
  /**
   * How the final answer is handed over: `arrayBuffer` and `blob` give the answer's exact bytes
   * (the server keeps any answer as bytes then), `text` its text, `json` (default) as it is.
   */
  responseType?: ResponseType;
}

export type ResponseType = 'arrayBuffer' | 'blob' | 'text' | 'json';

/** `forwardRequest`'s first argument: the body. A form is read with the bracket rules. */
export type ForwardBody = SubmitEvent | HTMLFormElement | FormData | { [key: string]: BodyValue } | null;

/** What `onResponse` learns about the request itself. */
export interface ResponseMeta {
  /** When the request began executing, in ms (when the server said). */
  executed?: number;
}

/** `forwardRequest`'s second argument: everything but the body. */
export interface ForwardOptions<R = Json> {
  /** The client secret to put where `$CLIENT_SECRET` stands. Without one, the request carries only what you wrote. */
  secretName?: string;
  url: string;
  /** Default `POST`. */
  method?: HttpMethod;
  /** A name starting `x-skapi-` is refused: `skapiHeaders` writes those. */
  headers?: Record<string, string | number | boolean>;
  /** The body's keys win over the form's. Refused with `multipart: true`. */
  data?: { [key: string]: BodyValue } | Json[] | Blob | ArrayBuffer | ArrayBufferView;
  /** The query; for GET, DELETE and HEAD the form merges here. */
  params?: { [key: string]: Json };
  /** Send the form itself as `multipart/form-data`, files included (at most 2,031,616 base64 characters). */
  multipart?: boolean;
  /** Tell the destination who calls: `x-skapi-user` (left out when signed out) and `x-skapi-service`, written by the server. */
  skapiHeaders?: boolean | { user?: boolean; service?: boolean };
  /** Act for another project in this call (its polls included); each defaults to the instance's. */
  service?: string;
  owner?: string;
  poll?: number | boolean;
  /** Lifetime of the record in ms (default 15 minutes). */
  expires?: number;
  queue?: string;
  stream?: boolean;
  /** With `stream: true`: chunks are pushed as they are written. */
  realtime?: boolean;
  onStream?: OnStream;
  onResponse?: (response: R | PendingRequest<R>, meta?: ResponseMeta) => void;
  onError?: (error: SkapiError) => void;
  /** `response` is refused: what comes back is the stored answer. */
  responseType?: ResponseType;
  /** Aborting stops this page's poll (it resolves `{id, status: 'stopped'}`); the request goes on. */
  signal?: AbortSignal;
}

/** A non-text answer as the wire carries it (`responseType` absent or `json`). */
export interface BinaryBody {
  body_b64: string;
  body_content_type: string;
}

/** How a chunk arrived: pushed by the server as it was written, or read by polling. */
export type StreamVia = 'push' | 'poll';

/** `chunk`: text of whole characters; `seq`: 1, 2, 3… with no gap. */
export type OnStream = (chunk: string, seq: number, via: StreamVia) => void;

/** What a streamed request resolves with once its stream has ended. */
export interface StreamResult {
  id: string;
  status: 'resolved' | 'failed';
  /** The third party's status, once it answered. */
  status_code: number | null;
  stream: true;
  /** The last chunk read: `since` for a later `clientSecretRequestStream`. */
  last_seq: number;
  /** Why a failed stream failed (`body`: what the third party wrote until then). */
  error?: { code: SkapiErrorCode; message: string; status_code?: number; body?: Json };
  /** The stream was cut at the server's `--max-response-bytes`. */
  truncated?: true;
}

export interface StreamOptions {
  /** With a short id: the url and method the request was made with. */
  url?: string;
  method?: HttpMethod;
  onStream?: OnStream;
  /** The last chunk already held (default 0: from the first). */
  since?: number;
  /** Polling interval in ms when the server cannot push (default 1000). */
  poll?: number;
  onResponse?: (response: StreamResult) => void;
  onError?: (error: SkapiError) => void;
  /** Aborting rejects at once and cancels the request on the server. */
  signal?: AbortSignal;
}

/** What `poll()` accepts: an interval in ms, or `{latency}`. */
export type PollArgument =
  | number
  | {
      latency?: number;
      onResponse?: (response: Json) => void;
      onError?: (error: SkapiError) => void;
      signal?: AbortSignal;
      responseType?: ResponseType;
    };

/** A promise that polls, and can be stopped: it then resolves `{id, status: 'stopped'}`. */
export interface PollPromise<T> extends Promise<T | StoppedPoll> {
  stop(): void;
}

export interface StoppedPoll {
  id: string | null;
  status: 'stopped';
}

/** The answer of a request made without `poll`. */
export interface PendingRequest<R = Json> {
  /** The server's id of the request (`<ms>:<entropy>`). */
  id: string;
  status: 'pending' | 'running';
  queue_name?: string;
  /** Position in the queue: 1 = next to run. */
  in_queue?: number;
  /** Polls until the request finishes (default every 1000 ms). */
  poll(arg?: PollArgument): PollPromise<R>;
}

export interface ApiError {
  code: SkapiErrorCode;
  message: string;
}

/** A recorded request, as `clientSecretRequestHistory` lists it. Timestamps in ms. */
export interface PollingResult {
  id: string;
  status: RequestStatus;
  status_code: number | null;
  response_body: Json | null;
  /**
   * `data` (or `params` for GET, DELETE and HEAD) as sent, placeholders as written; each file
   * as `{filename, content_type, size}`, a raw body as `{body_content_type, size}`.
   */
  request_body: Json | null;
  error: ApiError | null;
  created: number | null;
  updated: number | null;
  expires: number | null;
  queue_name: string | null;
  /** When the request began executing, in ms (when the server says). */
  executed?: number;
  /** `compact` listings: the request's label line, the head of the answer, whether it is complete. */
  request_text?: string;
  response_text?: string;
  response_complete_marker?: boolean;
  compact?: true;
  /** On unfinished items: polls until the item finishes. */
  poll?(arg?: PollArgument): PollPromise<Json>;
}

export interface HistoryParams {
  url: string;
  method: HttpMethod;
  queue?: string;
  status?: RequestStatus;
  /** ms; > 0 gives a promise per unfinished item in `pending`. Non-negative. */
  poll?: number;
  /** Aborting rejects the call at once (a `SkapiError` named `AbortError`). */
  signal?: AbortSignal;
  /** Each item's `response_body` as it asks (see `ClientSecretRequestParams.responseType`). */
  responseType?: ResponseType;
  /** Label stubs (`request_text`, `response_text`, …) instead of bodies. */
  compact?: boolean;
  /** Match `queue` exactly rather than as a prefix. */
  queue_exact?: boolean;
  /** Leave this queue's requests out. */
  queue_exclude?: string;
}

export interface FetchOptions {
  limit?: number;
  startKey?: Json;
  fetchMore?: boolean;
  ascending?: boolean;
}

export interface HistoryPage {
  list: PollingResult[];
  startKey: Json;
  endOfList: boolean;
  startKeyHistory: Json[];
  pending: PollPromise<PollingResult>[];
}

export interface CancelParams {
  url: string;
  method: HttpMethod;
  /** The id `clientSecretRequest` answered (or a full id). */
  id: string;
  queue?: string;
}

export interface StopPollingParams {
  url?: string;
  method?: HttpMethod;
  id?: string;
  queue?: string;
}

export interface User {
  user_id: string;
  sub: string;
  [claim: string]: Json;
}

export type SkapiErrorCode =
  | 'INVALID_PARAMETER'
  | 'INVALID_REQUEST'
  | 'NOT_EXISTS'
  | 'UNAUTHORIZED'
  | 'EXPIRED'
  | 'RATE_LIMITED'
  | 'QUOTA_EXCEEDED'
  | 'NETWORK_ERROR'
  | 'THIRD_PARTY_ERROR'
  | 'TIMEOUT'
  | 'REFUSED'
  | 'CANCELED'
  | 'INTERRUPTED'
  | 'SERVER_ERROR'
  | 'PAYLOAD_TOO_LARGE'
  | 'INVALID_CORS'
  | 'EXISTS'
  | 'STORAGE_FULL'
  | 'SHUTTING_DOWN'
  | 'STORAGE_UNAVAILABLE'
  | (string & {});

/** Every rejection: `name` is the method that failed, e.g. `clientSecretRequest()`. */
export declare class SkapiError extends Error {
  code: SkapiErrorCode;
  /** The third party's status, when it answered. */
  status_code?: number;
  /** The third party's body, when it answered. */
  body?: Json;
}

export declare class Skapi {
  /**
   * `new Skapi("<project id>")`: the ID Skapi's dashboard shows. Throws `Service ID is invalid.`
   * for one that does not decode. The docs' placeholder, `"<Project ID>"`, asks the person at the
   * page for the ID (kept for the tab) and holds calls until it is given; with nobody to ask it
   * throws `Project ID is required.`.
   */
  constructor(projectId: string, options?: SkapiOptions);
  constructor(service: string, owner: string, options?: SkapiOptions);
  readonly service: string;
  readonly owner: string;
  /** The project ID (also for a service and owner given apart; `null` when they make none). */
  readonly project_id: string | null;
  /** The logged-in user, or null. */
  readonly user: User | null;

  clientSecretRequest<R = Json>(params: ClientSecretRequestParams<R> & { stream: true }): PollPromise<StreamResult>;
  clientSecretRequest<R = Json>(params: ClientSecretRequestParams<R> & { poll: number | true }): PollPromise<R>;
  clientSecretRequest<R = Json>(params: ClientSecretRequestParams<R>): PollPromise<R | PendingRequest<R>>;
  clientSecretRequest(form: SubmitEvent | HTMLFormElement | FormData): PollPromise<Json>;
  /** Reads a stream by id — one this page did not start, or after a reload — from `since` on. */
  clientSecretRequestStream(requestId: string, options?: StreamOptions): PollPromise<StreamResult | Json>;
  /** Skapi's current door: the body first (merged into `data`, or `params` for GET, DELETE, HEAD), the rest in `options`. */
  forwardRequest<R = Json>(form: ForwardBody, options: ForwardOptions<R> & { stream: true }): PollPromise<StreamResult>;
  forwardRequest<R = Json>(form: ForwardBody, options: ForwardOptions<R> & { poll: number | true }): PollPromise<R>;
  forwardRequest<R = Json>(form: ForwardBody, options: ForwardOptions<R>): PollPromise<R | PendingRequest<R>>;
  /** The same functions under Skapi's current names. */
  forwardRequestStream: Skapi['clientSecretRequestStream'];
  forwardRequestFinalize: Skapi['clientSecretRequestFinalize'];
  forwardRequestHistory: Skapi['clientSecretRequestHistory'];
  cancelForwardRequest: Skapi['cancelClientSecretRequest'];
  stopForwardRequestPolling: Skapi['stopClientSecretPolling'];
  forwardRequestQueueCount: Skapi['clientSecretRequestQueueCount'];
  /** Replaces a finished stream's chunks by one stored body: `data`, or else the chunks' text. */
  clientSecretRequestFinalize(
    requestId: string,
    data?: Json,
    options?: { url?: string; method?: HttpMethod },
  ): Promise<{ finalized: boolean; message: string }>;
  clientSecretRequestHistory(params: HistoryParams, fetchOptions?: FetchOptions): Promise<HistoryPage>;
  cancelClientSecretRequest(params: CancelParams): Promise<{ removed: boolean; message: string }>;
  /** Stops polls by id, by queue, or all; returns how many were stopped. */
  stopClientSecretPolling(params?: StopPollingParams): number;
  isPollStopped(result: unknown): result is StoppedPoll;
  clientSecretRequestQueueCount(params: { queue: string }): Promise<{ queue_name: string; in_queue: number }>;
  loginWithToken(params: { idToken: string; accessToken?: string }): Promise<User>;
  logout(): Promise<string>;
  /** The response a form with an `action` left for this page (once), or null. */
  getFormResponse(): Promise<Json | null>;
  /** Polls running now. */
  activePolls(): number;
}

export declare function isPollStopped(result: unknown): result is StoppedPoll;

export default Skapi;
