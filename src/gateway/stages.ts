import type { ModelSpec } from '../catalog/index.ts';
import type { Attempt } from '../routing/index.ts';
import type {
  ChatRequest,
  ChatResponse,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  ServingNote,
  StreamEvent,
  Usage,
} from '../wire/index.ts';
import type { RequestContext, RequestStatus } from './ports.ts';

/** The inference operations that share the one lifecycle (Responses is served as `chat`). */
export type Operation = 'chat' | 'completion' | 'embeddings';

/** What a stage sees of one request in flight (read-only; the lifecycle owns it). */
export interface FlightView {
  readonly ctx: RequestContext;
  readonly op: Operation;
  readonly stream: boolean;
  /** The canonical request. A beforeAdmit stage may replace it (context compression: before it is estimated and held); later hooks must not. */
  req: ChatRequest | CompletionRequest | EmbeddingRequest;
  /**
   * Prompt-prefix stickiness (issue 17 item 5): a beforeAdmit stage sets the prompt prefix's hash, and the plan
   * orders the model's deployments by rendezvous hashing of it instead of by weight (`serving.stickyPrefix`).
   */
  routeKey: string | undefined;
  /** Set once admitted. */
  readonly model: ModelSpec | undefined;
  readonly reservationId: string;
  /**
   * Output tokens: the most this request may produce (the client's max_tokens within the model's limits), and what
   * the hold granted (a non-streamed upstream is capped at it; less than the most when the balance was short). Set once admitted.
   */
  readonly tokensOutputMax: number;
  readonly tokensOutputGranted: number;
  /** The attempt plan (deployments in the order dispatch will try them), set once admitted. */
  readonly attempts: readonly Attempt[];
  /** Set once settled. */
  readonly usage: Usage | undefined;
  readonly status: RequestStatus;
  /**
   * What stages did for this request (cache, compression, prompt-prefix stickiness, savings): stored on the usage
   * record as is. Undefined until a stage sets it (a plain request allocates nothing); `model: "auto"`'s route is
   * added by the gateway at settle.
   */
  serving: ServingNote | undefined;
}

/**
 * An answer a stage gives without an upstream call (issue 17 item 4, the exact response cache): a whole answer
 * for a non-streamed request, or the events of a stream, replayed through the normal meter and sink (so every
 * dialect's encoder writes them). The request is still charged through its reservation: settled with the
 * answer's usage at `chargeRatio` of the rated cost (absent: the whole cost), vendor cost 0, provider `source`.
 */
export type StageAnswer =
  | { kind: 'answer'; answer: ChatResponse | CompletionResponse | EmbeddingResponse; source: string; chargeRatio?: { num: number; den: number } }
  | { kind: 'events'; events: readonly StreamEvent[]; source: string; chargeRatio?: { num: number; den: number } };

/**
 * A pipeline stage: optional hooks at fixed points of the gateway lifecycle
 * (admit -> plan -> dispatch -> meter -> settle). The gateway's stage list is empty by default; a hook that
 * throws a TokenGridError refuses the request in the caller's API format (before admission nothing is held;
 * before dispatch the hold is released in the lifecycle's `finally`). Stages run in list order.
 *
 * Intended users (issue 17): a response cache and QoS (beforeAdmit / beforeDispatch), context compression
 * (beforeAdmit, rewriting the request before it is estimated), guardrails (beforeAdmit on input, onEvent and
 * onAnswer on output), usage-record savings (afterSettle), and QoS freeing its slot (onEnd).
 */
export interface Stage {
  readonly name: string;
  /** Before the model is resolved and anything is reserved. */
  beforeAdmit?(f: FlightView): void | Promise<void>;
  /**
   * After the reservation and attempt plan, before the first upstream call. May answer the request itself (the
   * exact response cache): the lifecycle then skips dispatch and meters, settles and delivers the stage's answer
   * as it would an upstream's (see StageAnswer). The first stage that answers wins; later stages do not run.
   */
  beforeDispatch?(f: FlightView): StageAnswer | undefined | void | Promise<StageAnswer | undefined | void>;
  /**
   * Each streamed event before it is metered and delivered: return it, a replacement, null to drop it, or
   * several events in order (a stage that held text back emits it before the next event: guardrails). Events
   * a stage emits are not passed to the stages again.
   */
  onEvent?(f: FlightView, ev: StreamEvent): StreamEvent | StreamEvent[] | null;
  /** A non-streamed answer before it is metered and returned: return it or a replacement. */
  onAnswer?(f: FlightView, res: ChatResponse | CompletionResponse | EmbeddingResponse): ChatResponse | CompletionResponse | EmbeddingResponse;
  /** After the usage record is written (the request's charge is final). Must not throw. */
  afterSettle?(f: FlightView): void;
  /**
   * Once when the request ends, on every path (answered, refused by admission or a stage, failed upstream,
   * client gone), after the hold was settled or released: where a stage frees what it took (a QoS slot).
   * Must not throw.
   */
  onEnd?(f: FlightView): void;
}

/** The stage list split by hook, once at construction: an empty hook costs one length check per request. */
export class StageHooks {
  readonly beforeAdmit: Stage[];
  readonly beforeDispatch: Stage[];
  readonly onEvent: Stage[];
  readonly onAnswer: Stage[];
  readonly afterSettle: Stage[];
  readonly onEnd: Stage[];
  constructor(stages: readonly Stage[]) {
    this.beforeAdmit = stages.filter((s) => s.beforeAdmit !== undefined);
    this.beforeDispatch = stages.filter((s) => s.beforeDispatch !== undefined);
    this.onEvent = stages.filter((s) => s.onEvent !== undefined);
    this.onAnswer = stages.filter((s) => s.onAnswer !== undefined);
    this.afterSettle = stages.filter((s) => s.afterSettle !== undefined);
    this.onEnd = stages.filter((s) => s.onEnd !== undefined);
  }
}
