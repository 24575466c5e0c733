package app

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
)

// localSourceErrors reports the local sources (path, inline, shipped) that
// failed to load in pol, each with its key path and the error (which names
// file:line for bad lines). policy.Build applies on_load_failure to them,
// which suits downloads that may fail for reasons outside the operator's
// hands; a broken local file is the operator's own edit, so a reload or a
// refresh refuses it and keeps the running policy instead of serving the
// last known good rules, SERVFAIL (fail_closed) or nothing (fail_open).
func localSourceErrors(cfg *config.Config, pol *policy.Policy) error {
	var errs []error
	for _, j := range pol.Jurisdictions() {
		for _, s := range j.Sources {
			if s.Err == "" || isURL(s.Origin) || s.Transfer != nil {
				continue
			}
			errs = append(errs, fmt.Errorf("%s: %s", sourceKey(cfg, j.ID, s), s.Err))
		}
	}
	return errors.Join(errs...)
}

func isURL(origin string) bool {
	return strings.HasPrefix(origin, "https://") || strings.HasPrefix(origin, "http://")
}

// sourceKey names a source of jurisdiction id by its configuration key path
// ("jurisdictions[2].sources[0]") when the configuration defines it, else
// by jurisdiction and source name.
func sourceKey(cfg *config.Config, id string, s policy.SourceInfo) string {
	for i, j := range cfg.Jurisdictions {
		if strings.TrimSpace(j.ID) != id {
			continue
		}
		for k, src := range j.Sources {
			if sourceName(src) == s.Name {
				return fmt.Sprintf("jurisdictions[%d].sources[%d] (%s)", i, k, s.Origin)
			}
		}
	}
	return fmt.Sprintf("jurisdiction %s source %s (%s)", id, s.Name, s.Origin)
}

// restartKeys lists the settings that differ between the configuration the
// process started with and next, and that only a restart applies: the
// listeners, the admin server, the cache, the logs.
func restartKeys(boot, next *config.Config) []string {
	type setting struct {
		key      string
		was, now any
	}
	settings := []setting{
		{"listen", boot.Listen, next.Listen},
		{"admin", boot.Admin, next.Admin},
		{"admin_auth", boot.AdminAuth, next.AdminAuth},
		{"admin_pprof", boot.AdminPprof, next.AdminPprof},
		{"server.udp_workers", boot.Server.UDPWorkers, next.Server.UDPWorkers},
		{"server.watch_config", boot.Server.WatchConfig, next.Server.WatchConfig},
		{"server.max_tcp_connections", boot.Server.MaxTCPConnections, next.Server.MaxTCPConnections},
		{"server.memory_limit", boot.Server.MemoryLimit, next.Server.MemoryLimit},
		{"cache.size", boot.Cache.Size, next.Cache.Size},
		{"cache.max_bytes", boot.Cache.MaxBytes, next.Cache.MaxBytes},
		{"cache.min_ttl", boot.Cache.MinTTL, next.Cache.MinTTL},
		{"cache.max_ttl", boot.Cache.MaxTTL, next.Cache.MaxTTL},
		{"cache.negative_max_ttl", boot.Cache.NegativeMaxTTL, next.Cache.NegativeMaxTTL},
		{"cache.servfail_ttl", boot.Cache.ServfailTTL, next.Cache.ServfailTTL},
		{"audit", boot.Audit, next.Audit},
		{"dot.max_connections", boot.DoT.MaxConnections, next.DoT.MaxConnections},
		{"doh.max_connections", boot.DoH.MaxConnections, next.DoH.MaxConnections},
		{"doh.max_streams", boot.DoH.MaxStreams, next.DoH.MaxStreams},
		{"doh.idle_timeout", boot.DoH.IdleTimeout, next.DoH.IdleTimeout},
		{"log", boot.Log, next.Log},
	}
	var out []string
	for _, s := range settings {
		if !reflect.DeepEqual(s.was, s.now) {
			out = append(out, s.key)
		}
	}
	return slices.Clip(out)
}
