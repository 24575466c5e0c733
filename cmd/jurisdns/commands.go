package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

func newServe() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve DNS (the default command)",
		Args:  cobra.NoArgs,
	}
	config.RegisterFlags(cmd.Flags())
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		a, err := app.New(app.Options{Load: config.LoadOptions{Flags: cmd.Flags()}})
		if err != nil {
			return err
		}
		sigs, stop := signals()
		defer stop()
		if err := a.Start(); err != nil {
			_ = a.Shutdown(context.Background())
			return err
		}
		return a.Run(context.Background(), sigs)
	}
	return cmd
}

func newValidate() *cobra.Command {
	var offline, strict bool
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration, upstreams, zones and every list; print every problem and exit non-zero",
		Long: `validate checks everything serve would build from the configuration and
prints every problem at once, each with its key path or file:line: the
configuration's own, the upstreams, the zones, and every list source that
fails to load (exit 1). Lines of a list that are skipped as bad are printed
as warnings; serve accepts them, so validate exits 0 unless --strict.

URL sources are downloaded (each within lists.deadline); when a download
fails, the last good copy in lists.cache_dir is checked instead and validate
says so on stderr. --offline makes no request at all: it checks the last good
copies, and skips a source that has none yet (serve downloads it). The
systemd unit runs validate --offline before every start, so that a list
server does not delay the start.`,
		Args: cobra.NoArgs,
	}
	configFlag(cmd.Flags())
	cmd.Flags().BoolVar(&offline, "offline", false, "no downloads: check URL sources from their last good copy in lists.cache_dir")
	cmd.Flags().BoolVar(&strict, "strict", false, "exit 1 on warnings too (bad lines skipped, unknown environment variables)")
	strictEnv := cmd.Flags().Bool("strict-env", false,
		"fail on JURISDNS_* variables that name no key (Kubernetes service-link variables are still ignored)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		r := app.Validate(cmd.Context(), config.LoadOptions{Flags: cmd.Flags()},
			app.PolicyOptions{Notes: cmd.ErrOrStderr(), Offline: offline})
		stderr := cmd.ErrOrStderr()
		src := "configuration"
		if r.Config != nil {
			src = r.Config.Source
		}
		// Unknown JURISDNS_* variables: warnings, problems under --strict-env.
		if r.Config != nil {
			for _, n := range r.Config.EnvWarnings() {
				if *strictEnv {
					r.Problems = append(r.Problems, n.Name+": unknown environment variable (--strict-env)"+didYouMean(n))
				} else {
					r.Warnings = append(r.Warnings, n.String())
				}
			}
		}
		for _, p := range r.Problems {
			fmt.Fprintln(stderr, p)
		}
		for _, w := range r.Warnings {
			if strings.HasPrefix(w, " ") {
				fmt.Fprintln(stderr, w)
			} else {
				fmt.Fprintln(stderr, "warning:", w)
			}
		}
		np, nw := countProblems(r.Problems), countProblems(r.Warnings)
		switch {
		case np > 0:
			fmt.Fprintf(stderr, "%s: %d %s", src, np, pluralize(np, "problem", "problems"))
			if nw > 0 {
				fmt.Fprintf(stderr, ", %d %s", nw, pluralize(nw, "warning", "warnings"))
			}
			fmt.Fprintln(stderr)
			return exitError{1}
		case nw > 0:
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid with %d %s (policy %s, %d jurisdictions)\n",
				src, nw, pluralize(nw, "warning", "warnings"), r.Policy.Hash()[:12], len(r.Policy.Jurisdictions()))
			if strict {
				return exitError{1}
			}
			return nil
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: ok (policy %s, %d jurisdictions)\n", src, r.Policy.Hash()[:12], len(r.Policy.Jurisdictions()))
		return nil
	}
	return cmd
}

// countProblems counts the problems, not their indented detail lines.
func countProblems(ps []string) int {
	n := 0
	for _, p := range ps {
		if !strings.HasPrefix(p, " ") {
			n++
		}
	}
	return n
}

func pluralize(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// didYouMean is the " (did you mean X?)" hint of an unknown variable, or "".
func didYouMean(n config.EnvNotice) string {
	if n.DidYouMean == "" {
		return ""
	}
	return " (did you mean " + n.DidYouMean + "?)"
}

func newVersion() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version and the VCS revision the binary was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if asJSON {
				return printJSON(cmd.OutOrStdout(), app.Build())
			}
			_, err := io.WriteString(cmd.OutOrStdout(), app.Build().String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the embedded default configuration",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(config.Default())
			return err
		},
	})
	return cmd
}

func newHealth() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Query the DNS health name of a running jurisdns (for container HEALTHCHECKs)",
		Args:  cobra.NoArgs,
	}
	configFlag(cmd.Flags())
	cmd.Flags().StringVar(&addr, "addr", "", "DNS address to probe (default: the first listen address)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, err := app.LoadConfig(config.LoadOptions{Flags: cmd.Flags()})
		if err != nil {
			return err
		}
		if addr == "" {
			if len(cfg.Listen) == 0 {
				return fmt.Errorf("no listen address configured")
			}
			addr = probeAddr(cfg.Listen[0])
		}
		name := cfg.Server.HealthName
		if name == "" {
			return fmt.Errorf("server.health_name is empty: no DNS health name to probe")
		}
		c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
		r, _, err := c.Exchange(m, addr)
		if err != nil {
			return fmt.Errorf("health %s: %w", addr, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("health %s: %s", addr, dns.RcodeToString[r.Rcode])
		}
		fmt.Fprintln(cmd.OutOrStdout(), "ok")
		return nil
	}
	return cmd
}

// probeAddr turns a wildcard listen address into a loopback one.
func probeAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// printJSON writes v as indented JSON, the one style of every --json
// output (snake_case keys, durations in seconds).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
