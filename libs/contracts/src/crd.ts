/**
 * The sagamesh Kubernetes API (group sagamesh.io, version v1alpha1): the SagaDefinition and Saga
 * CustomResourceDefinitions, generated from the TypeBox schemas of this module.
 *
 * One source of truth: the engine validates a definition against `SagaDefinitionSpec` at runtime
 * (define), and the API server validates a SagaDefinition against the CRD generated from that same
 * schema, so what `kubectl apply` accepts is exactly what the engine accepts. The operator's test rig
 * and the cdk8s app both install these objects; nobody writes the CRD YAML by hand. Pure, no I/O.
 */
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { DURATION_PATTERN } from './duration.ts';
import { FAULT_TARGET_PATTERN, Fault } from './faults.ts';
import { ID_PATTERN } from './ids.ts';
import { SagaDefinitionSpec, SagaPhases, StepState, StepTarget, ParticipantCommands } from './saga.ts';

export const SAGAMESH_GROUP = 'sagamesh.io';
export const SAGAMESH_VERSION = 'v1alpha1';
export const SAGAMESH_API_VERSION = `${SAGAMESH_GROUP}/${SAGAMESH_VERSION}`;
export const SAGAMESH_CATEGORY = 'sagamesh';
/** Set on a Saga while its run may need compensating; removed once the run is terminal. */
export const SAGA_FINALIZER = 'sagamesh.io/compensate';

export const SagaCrdNames = {
  saga: { kind: 'Saga', listKind: 'SagaList', plural: 'sagas', singular: 'saga', shortNames: ['sg'] },
  sagaDefinition: { kind: 'SagaDefinition', listKind: 'SagaDefinitionList', plural: 'sagadefinitions', singular: 'sagadefinition', shortNames: ['sd'] },
} as const;

/** Every `<service>.<command>` a step (or a fault) may name. */
export const KnownCommands: readonly string[] = Object.entries(ParticipantCommands).flatMap(([service, cmds]) => cmds.map((c) => `${service}.${c}`));

/** Kubernetes object names that are also engine key segments (`k8s.<namespace>.<name>`): a DNS label, no '.'. */
export const DNS_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

// ---- Saga spec and status (the SagaDefinition spec is SagaDefinitionSpec itself) ----

export const SagaSpec = Type.Object(
  {
    definitionRef: Type.Object(
      { name: Type.String({ pattern: DNS_LABEL_PATTERN, maxLength: 63, description: 'A SagaDefinition in the same namespace.' }) },
      { additionalProperties: false },
    ),
    input: Type.Record(Type.String(), Type.Unknown(), { description: "The run's input, passed to every step (e.g. customerId, items, amountCents)." }),
    faults: Type.Optional(Type.Array(Fault, { maxItems: 64, description: 'Per-run faults: override the global faults for this run only.' })),
  },
  { additionalProperties: false },
);
export type SagaSpec = Static<typeof SagaSpec>;

/** metav1.Condition. */
export const Condition = Type.Object({
  type: Type.String({ maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' }),
  status: Type.Union([Type.Literal('True'), Type.Literal('False'), Type.Literal('Unknown')]),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  reason: Type.String({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
  message: Type.String({ maxLength: 32768 }),
});
export type Condition = Static<typeof Condition>;
const Conditions = Type.Array(Condition, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });

/** A step in a Saga's status: the engine's step state without its (free-form) output. */
export const SagaStepStatus = Type.Omit(StepState, ['output']);
export type SagaStepStatus = Static<typeof SagaStepStatus>;

export const SagaStatus = Type.Object({
  phase: Type.Optional(Type.Union(SagaPhases.map((p) => Type.Literal(p)))),
  currentStep: Type.Optional(Type.String()),
  steps: Type.Optional(Type.Array(SagaStepStatus, { 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] })),
  conditions: Type.Optional(Conditions),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  runId: Type.Optional(Type.String()),
  definitionRevision: Type.Optional(Type.String()),
  traceId: Type.Optional(Type.String()),
  startedAt: Type.Optional(Type.String({ format: 'date-time' })),
  endedAt: Type.Optional(Type.String({ format: 'date-time' })),
  message: Type.Optional(Type.String({ description: 'Why the run failed or is waiting.' })),
});
export type SagaStatus = Static<typeof SagaStatus>;

export const SagaDefinitionStatus = Type.Object({
  conditions: Type.Optional(Conditions),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  /** Engine key and revision of the observed generation; Sagas started now pin this revision. */
  key: Type.Optional(Type.String()),
  revision: Type.Optional(Type.String()),
  stepCount: Type.Optional(Type.Integer({ minimum: 0 })),
});
export type SagaDefinitionStatus = Static<typeof SagaDefinitionStatus>;

/** The parts of ObjectMeta sagamesh reads (contracts import no Kubernetes client). */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
export interface SagaObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: SagaSpec;
  status?: SagaStatus;
}
export interface SagaDefinitionObject {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: SagaDefinitionSpec;
  status?: SagaDefinitionStatus;
}

// ---- Validation rules: CEL in the CRDs, mirrored by definitionProblems() for the operator ----

type Json = Record<string, unknown>;
interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
}

/**
 * A bare `pattern` makes the API server answer with the regular expression; these patterns become
 * CEL rules whose message says what to write instead. maxLength bounds CEL's cost estimate.
 */
const friendlyPatterns: Record<string, { maxLength: number; message: string }> = {
  [DURATION_PATTERN]: { maxLength: 32, message: 'must be a duration: a number with a unit (ms, s, m, h), e.g. 500ms, 5s, 2m, 1h30m' },
  [ID_PATTERN]: { maxLength: 128, message: "must be 1-128 letters, digits, '-' or '_' ('.' is reserved as the separator)" },
  [FAULT_TARGET_PATTERN]: { maxLength: 127, message: 'must be <service>.<command>, e.g. payments.charge' },
  [DNS_LABEL_PATTERN]: { maxLength: 63, message: "must be lowercase letters, digits and '-' (a DNS label, no '.')" },
  [StepTarget.properties.service.pattern!]: { maxLength: 63, message: "must be lowercase letters, digits and '-', starting with a letter, e.g. payments or charge" },
};

/** A CEL single-quoted string literal. */
const celString = (text: string) => `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
const celList = (values: readonly string[]) => `[${values.map(celString).join(', ')}]`;
const knownList = KnownCommands.join(', ');
const knownCommandRule = (field: 'action' | 'compensation'): CelRule => ({
  rule: `!has(self.${field}) || !has(self.${field}.service) || !has(self.${field}.command) || (self.${field}.service + '.' + self.${field}.command) in ${celList(KnownCommands)}`,
  messageExpression: `'${field} ' + self.${field}.service + '.' + self.${field}.command + ' is not a known command: use one of ${knownList}'`,
  fieldPath: `.${field}`,
});

/** Extra rules by position in the generated schema ('' = spec root, '[]' = each array item). */
const definitionRules: Record<string, CelRule[]> = {
  '': [
    {
      rule: '!has(self.steps) || self.steps.all(s, self.steps.exists_one(t, t.name == s.name))',
      // Naming the repeated step in a messageExpression costs over CEL's budget; the operator's condition names it.
      message: 'step names must be unique: give every step its own name',
      fieldPath: '.steps',
    },
  ],
  '.steps[]': [knownCommandRule('action'), knownCommandRule('compensation')],
};
const sagaRules: Record<string, CelRule[]> = {
  '.faults[]': [
    {
      rule: `!has(self.target) || !self.target.matches(${celString(FAULT_TARGET_PATTERN)}) || self.target in ${celList(KnownCommands)}`,
      messageExpression: `'fault target ' + self.target + ' is not a known command: use one of ${knownList}'`,
      fieldPath: '.target',
    },
  ],
};

/**
 * A TypeBox (JSON Schema) node → a structural OpenAPI v3 schema for apiextensions.k8s.io/v1:
 * TypeBox-only keys dropped, unions of literals → enum, unknown values → preserve-unknown-fields,
 * `additionalProperties: false` dropped (the API server prunes unknown fields instead, and
 * kubectl's strict field validation reports them), friendly patterns → CEL.
 */
function toStructuralSchema(schema: TSchema, rules: Record<string, CelRule[]> = {}, at = ''): Json {
  const s = schema as Json;
  const out: Json = {};
  const validations: CelRule[] = [...(rules[at] ?? [])];
  if (typeof s.description === 'string') out.description = s.description;

  const variants = (s.anyOf ?? s.oneOf) as Json[] | undefined;
  if (variants) {
    if (!variants.every((v) => 'const' in v)) throw new Error(`cannot make a structural schema of a union of non-literals at ${at || '/'}`);
    const values = variants.map((v) => v.const);
    out.type = typeof values[0] === 'number' ? (Number.isInteger(values[0]) ? 'integer' : 'number') : typeof values[0];
    out.enum = values;
  } else if ('const' in s) {
    out.type = typeof s.const;
    out.enum = [s.const];
  } else if (s.type === 'object') {
    out.type = 'object';
    const props = s.properties as Record<string, TSchema> | undefined;
    if (props) {
      out.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toStructuralSchema(v, rules, `${at}.${k}`)]));
      // The API server applies defaults before it validates: a defaulted field is never missing.
      const required = ((s.required as string[] | undefined) ?? []).filter((k) => (props[k] as Json).default === undefined);
      if (required.length > 0) out.required = required;
    } else {
      // Type.Record(String, Unknown): free-form JSON.
      out['x-kubernetes-preserve-unknown-fields'] = true;
    }
  } else if (s.type === 'array') {
    out.type = 'array';
    out.items = toStructuralSchema(s.items as TSchema, rules, `${at}[]`);
  } else if (s.type === undefined) {
    // Type.Unknown(): any JSON value.
    out['x-kubernetes-preserve-unknown-fields'] = true;
  } else {
    out.type = s.type;
  }

  for (const key of ['format', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'minItems', 'maxItems', 'default', 'x-kubernetes-list-type', 'x-kubernetes-list-map-keys']) {
    if (s[key] !== undefined) out[key] = structuredClone(s[key]);
  }
  if (typeof s.pattern === 'string') {
    const friendly = friendlyPatterns[s.pattern];
    if (friendly) {
      out.maxLength = Math.min(Number(out.maxLength ?? Infinity), friendly.maxLength);
      const field = at.split('.').pop()!.replace('[]', '');
      validations.unshift({ rule: `self.matches(${celString(s.pattern)})`, message: `${field} ${friendly.message}` });
    } else {
      out.pattern = s.pattern;
    }
  }
  if (validations.length > 0) out['x-kubernetes-validations'] = validations;
  return out;
}

const metadataNameRule = (kind: string): CelRule => ({
  rule: `self.metadata.name.matches(${celString(DNS_LABEL_PATTERN)})`,
  message: `${kind} names must be lowercase letters, digits and '-' (a DNS label, at most 63 characters, no '.'): the name is part of an engine key`,
});

interface CrdVersionParts {
  kind: string;
  specSchema: Json;
  statusSchema: Json;
  printerColumns: Json[];
  rootRules: CelRule[];
}

function crd(names: (typeof SagaCrdNames)[keyof typeof SagaCrdNames], parts: CrdVersionParts): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${names.plural}.${SAGAMESH_GROUP}`, labels: { 'app.kubernetes.io/part-of': 'sagamesh' } },
    spec: {
      group: SAGAMESH_GROUP,
      scope: 'Namespaced',
      names: { kind: names.kind, listKind: names.listKind, plural: names.plural, singular: names.singular, shortNames: [...names.shortNames], categories: [SAGAMESH_CATEGORY] },
      versions: [
        {
          name: SAGAMESH_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: parts.printerColumns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: `${parts.kind} (sagamesh.io): see the sagamesh README.`,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: parts.specSchema,
                status: parts.statusSchema,
              },
              ...(parts.rootRules.length > 0 ? { 'x-kubernetes-validations': parts.rootRules } : {}),
            },
          },
        },
      ],
    },
  };
}

/** The SagaDefinition CRD (apiextensions.k8s.io/v1), from `SagaDefinitionSpec`. */
export function sagaDefinitionCrd(): Json {
  return crd(SagaCrdNames.sagaDefinition, {
    kind: 'SagaDefinition',
    specSchema: toStructuralSchema(SagaDefinitionSpec, definitionRules),
    statusSchema: toStructuralSchema(SagaDefinitionStatus),
    rootRules: [metadataNameRule('SagaDefinition')],
    printerColumns: [
      { name: 'Steps', type: 'integer', jsonPath: '.status.stepCount' },
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      { name: 'Revision', type: 'string', jsonPath: '.status.revision', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });
}

/** The Saga CRD: a run of a SagaDefinition; its spec is immutable once created. */
export function sagaCrd(): Json {
  const specSchema = toStructuralSchema(SagaSpec, sagaRules);
  specSchema['x-kubernetes-validations'] = [
    ...((specSchema['x-kubernetes-validations'] as CelRule[] | undefined) ?? []),
    { rule: 'self == oldSelf', message: 'spec is immutable: a run keeps the input it started with; delete the Saga and create a new one to run again' },
  ];
  return crd(SagaCrdNames.saga, {
    kind: 'Saga',
    specSchema,
    statusSchema: toStructuralSchema(SagaStatus),
    rootRules: [],
    printerColumns: [
      { name: 'Definition', type: 'string', jsonPath: '.spec.definitionRef.name' },
      { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
      { name: 'Step', type: 'string', jsonPath: '.status.currentStep' },
      { name: 'Run', type: 'string', jsonPath: '.status.runId', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  });
}

/** Both CRDs, SagaDefinition first (Sagas refer to it). */
export function sagameshCrds(): Json[] {
  return [sagaDefinitionCrd(), sagaCrd()];
}

/**
 * The semantic checks the CRD's CEL rules make, for definitions that reach the operator another
 * way (a cluster without the CRD's validation, an older CRD): the same messages, for the
 * SagaDefinition's Ready=False condition. The shape itself is checked with `SagaDefinitionSpec`.
 */
export function definitionProblems(spec: SagaDefinitionSpec): string[] {
  return definitionIssues(spec).map((i) => i.message);
}

/** The same checks with the JSON pointer of each problem (the engine's `define` answers with these). */
export function definitionIssues(spec: SagaDefinitionSpec): { path: string; message: string }[] {
  const issues: { path: string; message: string }[] = [];
  const seen = new Set<string>();
  spec.steps.forEach((step, i) => {
    if (seen.has(step.name)) issues.push({ path: `/steps/${i}/name`, message: `step names must be unique: give every step its own name (${step.name} repeats)` });
    seen.add(step.name);
    for (const field of ['action', 'compensation'] as const) {
      const target = step[field];
      if (target && !KnownCommands.includes(`${target.service}.${target.command}`)) {
        issues.push({ path: `/steps/${i}/${field}`, message: `step ${step.name}: ${field} ${target.service}.${target.command} is not a known command: use one of ${knownList}` });
      }
    }
  });
  return issues;
}
