import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  KnownCommands,
  SagaPhases,
  StepStatuses,
  definitionProblems,
  orderFulfillmentDefinition,
  sagaCrd,
  sagaDefinitionCrd,
  sagameshCrds,
  type SagaDefinitionSpec,
} from '@sagamesh/contracts';
import { specProblems } from '../src/decision.ts';

type Json = Record<string, any>;
const schemaOf = (crd: Json): Json => crd.spec.versions[0].schema.openAPIV3Schema;

/** Every schema node with its path. */
function* nodes(schema: Json, path = ''): Generator<[string, Json]> {
  yield [path, schema];
  for (const [k, v] of Object.entries(schema.properties ?? {})) yield* nodes(v as Json, `${path}.${k}`);
  if (schema.items) yield* nodes(schema.items, `${path}[]`);
}

describe('CRDs generated from the contracts', () => {
  it('are structural: typed nodes, no unions, no TypeBox keys, no additionalProperties: false', () => {
    for (const crd of sagameshCrds()) {
      for (const [path, node] of nodes(schemaOf(crd))) {
        assert.ok(node.type || node['x-kubernetes-preserve-unknown-fields'], `${path} has a type`);
        for (const bad of ['anyOf', 'oneOf', 'allOf', 'const', '$id', 'patternProperties']) assert.ok(!(bad in node), `${path} has no ${bad}`);
        assert.notEqual(node.additionalProperties, false, `${path}`);
      }
    }
  });

  it('carry the group, version, names, short names, category, status subresource and printer columns', () => {
    const sd = sagaDefinitionCrd() as Json;
    const sg = sagaCrd() as Json;
    assert.equal(sd.metadata.name, 'sagadefinitions.sagamesh.io');
    assert.equal(sg.metadata.name, 'sagas.sagamesh.io');
    assert.deepEqual([sd.spec.names.shortNames, sg.spec.names.shortNames], [['sd'], ['sg']]);
    assert.deepEqual([sd.spec.names.categories, sg.spec.names.categories], [['sagamesh'], ['sagamesh']]);
    for (const crd of [sd, sg]) {
      assert.equal(crd.spec.group, 'sagamesh.io');
      assert.equal(crd.spec.versions[0].name, 'v1alpha1');
      assert.deepEqual(crd.spec.versions[0].subresources, { status: {} });
    }
    assert.deepEqual(sg.spec.versions[0].additionalPrinterColumns.filter((c: Json) => !c.priority).map((c: Json) => c.name), ['Definition', 'Phase', 'Step', 'Age']);
    assert.deepEqual(sd.spec.versions[0].additionalPrinterColumns.filter((c: Json) => !c.priority).map((c: Json) => c.name), ['Steps', 'Ready', 'Age']);
  });

  it('the SagaDefinition spec is the contracts\' SagaDefinitionSpec: same fields, bounds and defaults', () => {
    const spec = schemaOf(sagaDefinitionCrd()).properties.spec;
    assert.deepEqual(Object.keys(spec.properties), ['steps', 'deadline', 'compensationRetry']);
    assert.deepEqual(spec.required, ['steps']);
    assert.equal(spec.properties.steps.minItems, 1);
    assert.equal(spec.properties.steps.maxItems, 32);
    const step = spec.properties.steps.items;
    assert.equal(step.properties.retry.properties.attempts.minimum, 1);
    assert.equal(step.properties.timeout.default, '5s');
    assert.match(step.properties.timeout['x-kubernetes-validations'][0].message, /timeout must be a duration/);
  });

  it('the status schemas list every phase and step status, and conditions are a map keyed by type', () => {
    const status = schemaOf(sagaCrd()).properties.status;
    assert.deepEqual(status.properties.phase.enum, [...SagaPhases]);
    assert.deepEqual(status.properties.steps.items.properties.status.enum, [...StepStatuses]);
    assert.equal(status.properties.conditions['x-kubernetes-list-type'], 'map');
    assert.deepEqual(status.properties.conditions['x-kubernetes-list-map-keys'], ['type']);
    assert.deepEqual(status.properties.conditions.items.required, ['type', 'status', 'lastTransitionTime', 'reason', 'message']);
    for (const f of ['currentStep', 'observedGeneration', 'runId', 'definitionRevision', 'traceId']) assert.ok(status.properties[f], f);
  });

  it('the Saga spec is immutable (a transition rule), input is free-form, faults have the /admin/faults shape', () => {
    const spec = schemaOf(sagaCrd()).properties.spec;
    assert.ok(spec['x-kubernetes-validations'].some((r: Json) => r.rule === 'self == oldSelf'));
    assert.equal(spec.properties.input['x-kubernetes-preserve-unknown-fields'], true);
    assert.deepEqual(Object.keys(spec.properties.faults.items.properties), ['target', 'failureRate', 'latencyMs', 'crashAfterCommit']);
    assert.deepEqual(spec.required, ['definitionRef', 'input']);
  });

  it('CEL rules name every known command, and the operator reports the same problems for specs that bypass them', () => {
    const rules = JSON.stringify(schemaOf(sagaDefinitionCrd()));
    for (const c of KnownCommands) assert.ok(rules.includes(`'${c}'`), c);
    const spec: SagaDefinitionSpec = structuredClone(orderFulfillmentDefinition);
    assert.deepEqual(definitionProblems(spec), []);
    spec.steps[1]!.compensation = { service: 'payments', command: 'chargeback' };
    spec.steps.push({ ...spec.steps[0]! });
    assert.deepEqual(definitionProblems(spec), [
      'step charge-payment: compensation payments.chargeback is not a known command: use one of inventory.reserve, inventory.release, payments.charge, payments.refund, shipping.create, shipping.cancel',
      'step names must be unique: give every step its own name (reserve-inventory repeats)',
    ]);
    assert.match(specProblems({ steps: [{ name: 'a', action: { service: 'inventory', command: 'reserve' }, timeout: '5 seconds' }] }).join(), /timeout/);
  });
});
