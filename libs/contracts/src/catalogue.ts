/** The seeded catalogue: one scarce sku so overselling is reachable, the others ample for `make load`. */
export const Catalogue = [
  { sku: 'sku-1', name: 'Trail running shoes', price: 8999, initial: 1_000_000 },
  { sku: 'sku-2', name: 'Rain jacket', price: 12900, initial: 1_000_000 },
  { sku: 'sku-3', name: 'Headlamp', price: 2499, initial: 1_000_000 },
  { sku: 'sku-4', name: 'Water bottle', price: 1500, initial: 1_000_000 },
  { sku: 'sku-rare', name: 'Limited edition summit watch', price: 49900, initial: 50 },
] as const;
export type CatalogueEntry = (typeof Catalogue)[number];
