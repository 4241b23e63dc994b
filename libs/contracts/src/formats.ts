import { FormatRegistry } from '@sinclair/typebox';

/**
 * RFC 3339 date-time, the `format: 'date-time'` of RunView, StepState and the CRD status. TypeBox's
 * compiled checks reject every value of a format nobody registered, so it is registered here, once,
 * as a side effect of importing the contracts.
 */
const DATE_TIME_PATTERN = '^\\d{4}-\\d{2}-\\d{2}[Tt]\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?([Zz]|[+-]\\d{2}:\\d{2})$';
const dateTime = new RegExp(DATE_TIME_PATTERN);
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => dateTime.test(v) && !Number.isNaN(Date.parse(v)));
