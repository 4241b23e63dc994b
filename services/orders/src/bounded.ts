/** Sets `key` as the newest entry of `map` (insertion order), dropping the oldest past `max` entries. */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > max) map.delete(map.keys().next().value!);
}
