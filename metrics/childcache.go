package metrics

import (
	"maps"
	"sync"
	"sync/atomic"
)

// childCache maps label values to pre-created metric children. Reads are one
// atomic load and one lookup in an immutable map: no lock, no allocation. A
// miss copies the map under a mutex, which happens once per distinct key.
// After limit distinct keys, new keys share the child of the overflow key.
type childCache[K comparable, V any] struct {
	m        atomic.Pointer[map[K]V]
	mu       sync.Mutex
	limit    int
	overflow K
	create   func(K) V
}

func newChildCache[K comparable, V any](limit int, overflow K, create func(K) V) *childCache[K, V] {
	c := &childCache[K, V]{limit: limit, overflow: overflow, create: create}
	c.m.Store(&map[K]V{})
	return c
}

func (c *childCache[K, V]) get(k K) V {
	if v, ok := (*c.m.Load())[k]; ok {
		return v
	}
	return c.add(k)
}

func (c *childCache[K, V]) add(k K) V {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.m.Load()
	if v, ok := old[k]; ok {
		return v
	}
	if len(old) >= c.limit {
		// Past the cap: count under the overflow key, which gets one slot of
		// its own beyond the limit so the map never grows further.
		if v, ok := old[c.overflow]; ok {
			return v
		}
		k = c.overflow
	}
	v := c.create(k)
	next := make(map[K]V, len(old)+1)
	maps.Copy(next, old)
	next[k] = v
	c.m.Store(&next)
	return v
}
