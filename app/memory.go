package app

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"runtime/metrics"
)

// The automatic soft memory limit (server.memory_limit: 0): what the process
// holds at rest right after a policy build (the policy, the listeners, the
// runtime), plus the cache at its bound (cache.max_bytes), plus a headroom
// for the queries in flight and the garbage between two collections: the
// larger of memoryHeadroom and cache.max_bytes; never below memoryFloor. The
// headroom sets how often the collector runs under load, and a collection
// costs about as much as the cache holds pointers (the policy holds almost
// none): a headroom that grows with the cache keeps that cost in proportion.
//
// Without a limit the Go runtime lets the heap grow to twice what is live
// (GOGC=100) before it collects: with a 1M-name list (~40 MB) and a full
// cache that is 160 MB or more after a burst of misses, most of it garbage.
// The limit makes the collector run before that instead; it is soft, so a
// server whose live heap outgrows it keeps running (the runtime then caps
// the collector at about half the CPU and lets the heap grow).
const (
	memoryHeadroom = 24 << 20
	memoryFloor    = 64 << 20
)

// memoryBudget sets the runtime's soft memory limit (debug.SetMemoryLimit)
// after every policy build. The metric is the Go collector's
// go_gc_gomemlimit_bytes.
type memoryBudget struct {
	on       bool  // Options.MemoryLimit (jurisdns serve)
	fixed    int64 // server.memory_limit; 0: automatic
	cacheMax int64 // cache.max_bytes
	log      *slog.Logger
}

func newMemoryBudget(on bool, fixed, cacheMax int64, log *slog.Logger) *memoryBudget {
	b := &memoryBudget{on: on, fixed: fixed, cacheMax: cacheMax, log: log}
	if _, set := os.LookupEnv("GOMEMLIMIT"); set && on {
		// The operator's GOMEMLIMIT wins over the configuration.
		log.Info("memory limit from GOMEMLIMIT; server.memory_limit not applied", "limit_bytes", debug.SetMemoryLimit(-1))
		b.on = false
	}
	return b
}

// lift removes the limit while a new policy is built beside the old one (the
// rebuild lowers GOGC for that time instead), so that the build does not
// run the collector without pause.
func (b *memoryBudget) lift() {
	if b != nil && b.on {
		debug.SetMemoryLimit(math.MaxInt64)
	}
}

// settle collects the garbage of a build and returns the freed pages to the
// OS (see releaseMemory), then sets the limit: the configured one, or the
// automatic one from what is in use right after that collection.
func (b *memoryBudget) settle() {
	releaseMemory()
	if b == nil || !b.on {
		return
	}
	limit := b.fixed
	var base uint64
	if limit == 0 {
		base = inUse()
		limit = autoLimit(base, b.cacheMax)
	}
	debug.SetMemoryLimit(limit)
	b.log.Info("memory limit set", "limit_bytes", limit, "automatic", b.fixed == 0, "in_use_bytes", base, "cache_max_bytes", b.cacheMax)
}

// autoLimit is the automatic limit for base bytes in use at rest and a cache
// of at most cacheMax bytes.
func autoLimit(base uint64, cacheMax int64) int64 {
	c := min(max(cacheMax, 0), math.MaxInt64/4)
	l := int64(min(base, math.MaxInt64/4)) + c + max(c, memoryHeadroom)
	return max(l, memoryFloor)
}

// inUse is the memory the runtime holds from the OS and has not returned:
// what GOMEMLIMIT counts.
func inUse() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 || s[1].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
