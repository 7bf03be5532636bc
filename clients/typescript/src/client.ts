// A thin typed wrapper over the generated ImageService client (Connect-ES
// with its gRPC transport for Node). Cancel a call with an AbortSignal: the
// server then kills every codex process of the request.
import { createHash } from "node:crypto";
import { rename, rm, writeFile } from "node:fs/promises";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import {
  ListOperationsRequestSchema,
  Operations,
  type ListOperationsRequest,
  type ListOperationsResponse,
  type Operation,
} from "./gen/google/longrunning/operations_pb.js";
import {
  GenerateRequestSchema,
  GenerationMetadataSchema,
  GenerationResultSchema,
  ImageService,
  type GenerationMetadata,
  type GenerationResult,
  ListImagesRequestSchema,
  ListRequestsRequestSchema,
  type GetRequestResponse,
  type ListImagesRequest,
  type ListImagesResponse,
  type ListRequestsRequest,
  type ListRequestsResponse,
  type RequestRecord,
  type GenerateRequest,
  type GenerateResponse,
  type GenerateSummary,
  type GetCapabilitiesResponse,
  type HealthResponse,
  type Image,
} from "./gen/codeximage/v1/image_service_pb.js";
import { ImageClientError, fromStatus, toClientError } from "./errors.js";

export const DEFAULT_TARGET = "127.0.0.1:17342";

export interface ClientOptions {
  /** Sent as `authorization: Bearer <key>` on every call. */
  apiKey?: string;
  /** Default deadline of every call except generate (whose runs take minutes). */
  timeoutMs?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/** A Generate stream event: the proto's oneof as a discriminated union. */
export type GenerateEvent = Exclude<GenerateResponse["event"], { case: undefined }>;

export interface GenerateResult {
  images: Image[];
  summary?: GenerateSummary;
}

export interface FileInfo {
  contentType: string;
  totalSize: bigint;
  sha256: string;
}

export type GenerateInit = Partial<Omit<GenerateRequest, "$typeName" | "$unknown">>;
/** Filters and paging of ListImages (times as protobuf Timestamps, e.g. timestampFromDate). */
export type ListImagesInit = Partial<Omit<ListImagesRequest, "$typeName" | "$unknown">>;
export type ListRequestsInit = Partial<Omit<ListRequestsRequest, "$typeName" | "$unknown">>;
/** Paging and filter ("done = true|false", "state = RUNNING", ...) of ListOperations. */
export type ListOperationsInit = Partial<Omit<ListOperationsRequest, "$typeName" | "$unknown">>;

/** "operations/ID" for an id or a name. */
export function operationName(nameOrId: string): string {
  return nameOrId.startsWith("operations/") ? nameOrId : `operations/${nameOrId}`;
}

/** An operation's state, attempts, progress and times. */
export function operationMetadata(op: Operation): GenerationMetadata | undefined {
  return op.metadata ? anyUnpack(op.metadata, GenerationMetadataSchema) : undefined;
}

/** A done operation's images and summary; a failed or cancelled one throws its ImageClientError. */
export function operationResult(op: Operation): GenerationResult {
  if (!op.done) throw new Error(`${op.name} is not done yet`);
  if (op.result.case === "error") throw fromStatus(op.result.value);
  const result = op.result.case === "response" ? anyUnpack(op.result.value, GenerationResultSchema) : undefined;
  if (!result) throw new Error(`${op.name} carries no GenerationResult`);
  return result;
}

export class ImageClient {
  private readonly rpc: Client<typeof ImageService>;
  private readonly ops: Client<typeof Operations>;
  private readonly timeoutMs?: number;

  /** `target` is "host:port" or a full "http://host:port" URL. */
  constructor(target: string = DEFAULT_TARGET, options: ClientOptions = {}) {
    const interceptors: Interceptor[] = [];
    if (options.apiKey) {
      const value = `Bearer ${options.apiKey}`;
      interceptors.push((next) => (req) => {
        req.header.set("authorization", value);
        return next(req);
      });
    }
    const baseUrl = target.includes("://") ? target : `http://${target}`;
    const transport = createGrpcTransport({ baseUrl, interceptors });
    this.rpc = createClient(ImageService, transport);
    this.ops = createClient(Operations, transport);
    this.timeoutMs = options.timeoutMs;
  }

  private opts(o: CallOptions = {}, defaultTimeout = this.timeoutMs) {
    return { signal: o.signal, timeoutMs: o.timeoutMs ?? defaultTimeout };
  }

  async health(o?: CallOptions): Promise<HealthResponse> {
    return this.rpc.health({}, this.opts(o)).catch(rethrow);
  }

  async capabilities(o?: CallOptions): Promise<GetCapabilitiesResponse> {
    return this.rpc.getCapabilities({}, this.opts(o)).catch(rethrow);
  }

  async getImage(imageId: string, o?: CallOptions): Promise<Image | undefined> {
    const res = await this.rpc.getImage({ imageId }, this.opts(o)).catch(rethrow);
    return res.image;
  }

  /** One page of stored images, newest first; pass `nextPageToken` on as `pageToken`. */
  async listImages(request: ListImagesInit = {}, o?: CallOptions): Promise<ListImagesResponse> {
    return this.rpc.listImages(create(ListImagesRequestSchema, request), this.opts(o)).catch(rethrow);
  }

  /** Every stored image matching the filters, page by page. */
  iterImages(request: ListImagesInit = {}, o?: CallOptions): AsyncGenerator<Image> {
    return everyPage((pageToken) => this.listImages({ ...request, pageToken }, o).then((p) => [p.images, p.nextPageToken]));
  }

  /** Deletes a stored image (bytes and record); NotFound when it is not stored. */
  async deleteImage(imageId: string, o?: CallOptions): Promise<void> {
    await this.rpc.deleteImage({ imageId }, this.opts(o)).catch(rethrow);
  }

  /** One page of the request history, newest first (failed, cancelled and refused too). */
  async listRequests(request: ListRequestsInit = {}, o?: CallOptions): Promise<ListRequestsResponse> {
    return this.rpc.listRequests(create(ListRequestsRequestSchema, request), this.opts(o)).catch(rethrow);
  }

  /** Every request matching the filters, page by page. */
  iterRequests(request: ListRequestsInit = {}, o?: CallOptions): AsyncGenerator<RequestRecord> {
    return everyPage((pageToken) => this.listRequests({ ...request, pageToken }, o).then((p) => [p.requests, p.nextPageToken]));
  }

  /** A request's parameters, outcome, durations, accounts, images and its key's usage. */
  async getRequest(requestId: string, o?: CallOptions): Promise<GetRequestResponse> {
    return this.rpc.getRequest({ requestId }, this.opts(o)).catch(rethrow);
  }

  /** SubmitGeneration: a detached generation, run whether or not this client stays. */
  async submit(request: GenerateInit, o?: CallOptions): Promise<Operation> {
    return this.rpc.submitGeneration(create(GenerateRequestSchema, request), this.opts(o)).catch(rethrow);
  }

  async getOperation(name: string, o?: CallOptions): Promise<Operation> {
    return this.ops.getOperation({ name: operationName(name) }, this.opts(o)).catch(rethrow);
  }

  /** The operation once done, or as it is after `waitMs` (undefined: until done). */
  async wait(name: string, waitMs?: number, o: { signal?: AbortSignal } = {}): Promise<Operation> {
    const deadline = waitMs === undefined ? undefined : Date.now() + waitMs;
    for (;;) {
      const left = deadline === undefined ? 60_000 : Math.max(0, Math.min(60_000, deadline - Date.now()));
      const timeout = { seconds: BigInt(Math.floor(left / 1000)), nanos: (left % 1000) * 1_000_000 };
      const op = await this.ops.waitOperation({ name: operationName(name), timeout },
        { signal: o.signal, timeoutMs: left + 30_000 }).catch(rethrow);
      if (op.done || (deadline !== undefined && Date.now() >= deadline)) return op;
    }
  }

  /** Stops it (every codex run of it); FailedPrecondition when already done. */
  async cancel(name: string, o?: CallOptions): Promise<void> {
    await this.ops.cancelOperation({ name: operationName(name) }, this.opts(o)).catch(rethrow);
  }

  async deleteOperation(name: string, o?: CallOptions): Promise<void> {
    await this.ops.deleteOperation({ name: operationName(name) }, this.opts(o)).catch(rethrow);
  }

  async listOperations(request: ListOperationsInit = {}, o?: CallOptions): Promise<ListOperationsResponse> {
    return this.ops.listOperations(create(ListOperationsRequestSchema, request), this.opts(o)).catch(rethrow);
  }

  iterOperations(request: ListOperationsInit = {}, o?: CallOptions): AsyncGenerator<Operation> {
    return everyPage((pageToken) => this.listOperations({ ...request, pageToken }, o).then((p) => [p.operations, p.nextPageToken]));
  }

  /** Streams typed events; throws ImageClientError (code Canceled after an abort). */
  async *generate(request: GenerateInit, o: CallOptions = {}): AsyncGenerator<GenerateEvent> {
    const req = create(GenerateRequestSchema, request);
    try {
      for await (const res of this.rpc.generate(req, this.opts(o, undefined))) {
        if (res.event.case !== undefined) yield res.event;
      }
    } catch (err) {
      throw toClientError(err);
    }
  }

  /** Runs a generation to its end, reporting each event to `onEvent`. */
  async generateAll(request: GenerateInit, o: CallOptions & { onEvent?: (e: GenerateEvent) => void } = {}): Promise<GenerateResult> {
    const result: GenerateResult = { images: [] };
    for await (const event of this.generate(request, o)) {
      o.onEvent?.(event);
      if (event.case === "image") result.images.push(event.value);
      else if (event.case === "summary") result.summary = event.value;
    }
    return result;
  }

  /** Fetches one image's bytes, checking size and sha256 against the first chunk. */
  async download(imageId: string, o?: CallOptions): Promise<{ info: FileInfo; data: Buffer }> {
    const chunks: Buffer[] = [];
    const hash = createHash("sha256");
    let info: FileInfo | undefined;
    try {
      for await (const chunk of this.rpc.getImageFile({ imageId }, this.opts(o))) {
        info ??= { contentType: chunk.contentType, totalSize: chunk.totalSize, sha256: chunk.sha256 };
        hash.update(chunk.data);
        chunks.push(Buffer.from(chunk.data));
      }
    } catch (err) {
      throw toClientError(err);
    }
    const data = Buffer.concat(chunks);
    const got = hash.digest("hex");
    if (!info || BigInt(data.length) !== info.totalSize || got !== info.sha256) {
      throw new ImageClientError(new ConnectError(
        `image ${imageId}: got ${data.length} bytes sha256 ${got}, server announced ${info?.totalSize} ${info?.sha256}`,
        Code.DataLoss));
    }
    return { info, data };
  }

  /** download() into a file that appears only once the bytes are verified. */
  async downloadFile(imageId: string, path: string, o?: CallOptions): Promise<FileInfo> {
    const { info, data } = await this.download(imageId, o);
    const part = `${path}.part`;
    try {
      await writeFile(part, data);
      await rename(part, path);
    } finally {
      await rm(part, { force: true });
    }
    return info;
  }
}

async function* everyPage<T>(page: (token: string) => Promise<[T[], string]>): AsyncGenerator<T> {
  let token = "";
  do {
    const [items, next] = await page(token);
    yield* items;
    token = next;
  } while (token);
}

function rethrow(err: unknown): never {
  throw toClientError(err);
}
