/**
 * The operator's Kubernetes I/O: lists for the informers, status writes through the /status
 * subresource (optimistic: with the resourceVersion read, so a stale write is a 409), finalizer
 * patches (also guarded by resourceVersion), and Events (events.k8s.io/v1) with names derived from the
 * transition, so that recording the same transition twice is a harmless 409.
 */
import { createHash } from 'node:crypto';
import {
  ApiException,
  CustomObjectsApi,
  EventsV1Api,
  PatchStrategy,
  V1MicroTime,
  setHeaderOptions,
  type KubeConfig,
} from '@kubernetes/client-node';
import {
  SAGAMESH_API_VERSION,
  SAGAMESH_GROUP,
  SAGAMESH_VERSION,
  SagaCrdNames,
  type ObjectMeta,
  type SagaDefinitionObject,
  type SagaDefinitionStatus,
  type SagaObject,
  type SagaStatus,
} from '@sagamesh/contracts';
import type { EventSpec } from './transition-events.ts';

export type Kind = 'Saga' | 'SagaDefinition';
const plural = (kind: Kind) => (kind === 'Saga' ? SagaCrdNames.saga.plural : SagaCrdNames.sagaDefinition.plural);

export function isApiError(err: unknown, code: number): boolean {
  return err instanceof ApiException && err.code === code;
}

/** A write lost a race with another writer: read again and decide again. */
export class ConflictError extends Error {
  constructor(what: string, options?: ErrorOptions) {
    super(`conflict writing ${what}: the object changed since it was read`, options);
    this.name = 'ConflictError';
  }
}

export const REPORTING_CONTROLLER = 'sagamesh.io/operator';

let lastEventMicros = 0;
/** A strictly increasing event time with microseconds, so Events of one reconcile keep their order. */
export function nextEventTime(): V1MicroTime {
  const micros = Math.max(lastEventMicros + 1, Date.now() * 1000);
  lastEventMicros = micros;
  const time = new V1MicroTime(Math.floor(micros / 1000));
  const fraction = String(micros % 1000).padStart(3, '0');
  time.toISOString = () => `${Date.prototype.toISOString.call(time).slice(0, -1)}${fraction}Z`;
  return time;
}

export type AnyObject = SagaObject | SagaDefinitionObject;

export class KubeApi {
  readonly custom: CustomObjectsApi;
  readonly #events: EventsV1Api;
  readonly #identity: string;
  readonly #pageSize: number;

  constructor(kc: KubeConfig, identity: string, opts: { pageSize?: number } = {}) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.#events = kc.makeApiClient(EventsV1Api);
    this.#identity = identity;
    this.#pageSize = opts.pageSize ?? 500;
  }

  /** The watch path of a kind across all namespaces (or one). */
  static watchPath(kind: Kind, namespace?: string): string {
    return `/apis/${SAGAMESH_GROUP}/${SAGAMESH_VERSION}${namespace ? `/namespaces/${namespace}` : ''}/${plural(kind)}`;
  }

  /** Lists every object of a kind, a page at a time; the resourceVersion is the first page's (one consistent snapshot). */
  async list<T extends AnyObject>(kind: Kind, namespace?: string): Promise<{ metadata: { resourceVersion: string }; items: T[] }> {
    const items: T[] = [];
    let resourceVersion: string | undefined;
    let cont: string | undefined;
    do {
      const common = { group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, limit: this.#pageSize, ...(cont ? { _continue: cont } : {}) };
      const page = (namespace
        ? await this.custom.listNamespacedCustomObject({ ...common, namespace, plural: plural(kind) })
        : await this.custom.listCustomObjectForAllNamespaces({ ...common, resourcePlural: plural(kind) })) as { metadata?: { resourceVersion?: string; continue?: string }; items: T[] };
      items.push(...page.items);
      resourceVersion ??= page.metadata?.resourceVersion;
      // Custom objects come back as raw JSON: the token is `continue` (the request parameter is `_continue`).
      cont = page.metadata?.continue || undefined;
    } while (cont);
    return { metadata: { resourceVersion: resourceVersion ?? '' }, items };
  }

  /** The object as stored now, or undefined when it is gone. */
  async get<T extends AnyObject>(kind: Kind, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: SAGAMESH_GROUP, version: SAGAMESH_VERSION, namespace, plural: plural(kind), name })) as T;
    } catch (err) {
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Replaces the status (PUT .../status with the resourceVersion read): ConflictError on a race, undefined when the object is gone. */
  async replaceStatus<T extends AnyObject>(kind: Kind, obj: T, status: SagaStatus | SagaDefinitionStatus): Promise<T | undefined> {
    const { namespace, name } = obj.metadata as Required<Pick<ObjectMeta, 'namespace' | 'name'>>;
    try {
      return (await this.custom.replaceNamespacedCustomObjectStatus({
        group: SAGAMESH_GROUP,
        version: SAGAMESH_VERSION,
        namespace,
        plural: plural(kind),
        name,
        body: { ...obj, apiVersion: SAGAMESH_API_VERSION, kind, status },
        fieldManager: 'sagamesh-operator',
      })) as T;
    } catch (err) {
      if (isApiError(err, 409)) throw new ConflictError(`${kind} ${namespace}/${name} status`, { cause: err });
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Sets metadata.finalizers (a merge patch guarded by the resourceVersion read). */
  async setFinalizers<T extends AnyObject>(kind: Kind, obj: T, finalizers: string[]): Promise<T | undefined> {
    const { namespace, name, resourceVersion } = obj.metadata as Required<Pick<ObjectMeta, 'namespace' | 'name' | 'resourceVersion'>>;
    try {
      return (await this.custom.patchNamespacedCustomObject(
        {
          group: SAGAMESH_GROUP,
          version: SAGAMESH_VERSION,
          namespace,
          plural: plural(kind),
          name,
          body: { metadata: { finalizers, resourceVersion } },
          fieldManager: 'sagamesh-operator',
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      )) as T;
    } catch (err) {
      if (isApiError(err, 409)) throw new ConflictError(`${kind} ${namespace}/${name} finalizers`, { cause: err });
      if (isApiError(err, 404)) return undefined;
      throw err;
    }
  }

  /** Records an Event about the object; the same transition (kind, uid, key) is recorded once. */
  async recordEvent(kind: Kind, obj: AnyObject, event: EventSpec, time: V1MicroTime = nextEventTime()): Promise<void> {
    const { namespace, name, uid } = obj.metadata as Required<Pick<ObjectMeta, 'namespace' | 'name' | 'uid'>>;
    const id = createHash('sha256').update(`${uid}/${event.key}`).digest('hex').slice(0, 16);
    try {
      await this.#events.createNamespacedEvent({
        namespace,
        body: {
          metadata: { name: `${name.slice(0, 200)}.${id}`, namespace },
          eventTime: time,
          type: event.type,
          reason: event.reason,
          action: 'Reconcile',
          note: event.note.slice(0, 1024),
          regarding: { apiVersion: SAGAMESH_API_VERSION, kind, namespace, name, uid },
          reportingController: REPORTING_CONTROLLER,
          reportingInstance: this.#identity.slice(0, 128),
        },
      });
    } catch (err) {
      if (!isApiError(err, 409)) throw err;
    }
  }
}
