// Every status has a word and an icon (the colour only repeats them): the list, the timeline and the legend use these.
import type { SagaPhase } from '@sagamesh/contracts';
import type { TimelineEntry } from './model/timeline.ts';

export type Tone = 'ok' | 'bad' | 'busy' | 'undo' | 'idle';
export interface Look {
  icon: string;
  word: string;
  tone: Tone;
}

export const phaseLook: Record<SagaPhase, Look> = {
  Pending: { icon: '○', word: 'Pending', tone: 'idle' },
  Running: { icon: '▶', word: 'Running', tone: 'busy' },
  Compensating: { icon: '↺', word: 'Compensating', tone: 'undo' },
  Succeeded: { icon: '✓', word: 'Succeeded', tone: 'ok' },
  Compensated: { icon: '↩', word: 'Compensated', tone: 'undo' },
  Failed: { icon: '✗', word: 'Failed', tone: 'bad' },
};

export const outcomeLook: Record<TimelineEntry['outcome'], Look> = {
  pending: { icon: '○', word: 'pending', tone: 'idle' },
  running: { icon: '▶', word: 'running', tone: 'busy' },
  succeeded: { icon: '✓', word: 'succeeded', tone: 'ok' },
  failed: { icon: '✗', word: 'failed', tone: 'bad' },
  'timed out': { icon: '⧗', word: 'timed out', tone: 'bad' },
  skipped: { icon: '–', word: 'skipped', tone: 'idle' },
  compensating: { icon: '↺', word: 'compensating', tone: 'undo' },
  compensated: { icon: '↩', word: 'compensated', tone: 'undo' },
  'compensation failed': { icon: '✗', word: 'compensation failed', tone: 'bad' },
};
