/** Default ports (all overridable by each service's config). */
export const Ports = {
  gateway: 8080,
  orders: 8081,
  orchestrator: 8082,
  inventory: 8083,
  payments: 8084,
  shipping: 8085,
  notifications: 8086,
  operator: 8090,
  nats: 4222,
  prometheus: 9090,
} as const;

export const ServiceNames = [
  'gateway',
  'orders',
  'orchestrator',
  'inventory',
  'payments',
  'shipping',
  'notifications',
] as const;
export type ServiceName = (typeof ServiceNames)[number];

/** Services that handle saga commands. */
export const ParticipantNames = ['inventory', 'payments', 'shipping'] as const;
export type ParticipantName = (typeof ParticipantNames)[number];
