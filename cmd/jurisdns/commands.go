package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
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
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the configuration and every list; exit non-zero with every problem",
		Args:  cobra.NoArgs,
	}
	config.RegisterFlags(cmd.Flags())
	strictEnv := cmd.Flags().Bool("strict-env", false,
		"fail on JURISDNS_* variables that name no key (Kubernetes service-link variables are still ignored)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		cfg, pol, err := loadPolicy(cmd)
		if cfg != nil {
			warnings, terr := app.CheckTLS(cfg, time.Now())
			for _, w := range warnings {
				fmt.Fprintln(os.Stderr, "warning:", w)
			}
			err = errors.Join(err, terr)
		}
		if err != nil {
			for _, e := range splitErr(err) {
				fmt.Fprintln(os.Stderr, e)
			}
			return exitError{1}
		}
		if warn := cfg.EnvWarnings(); len(warn) > 0 {
			for _, n := range warn {
				if *strictEnv {
					fmt.Fprintln(os.Stderr, n.Name+": unknown environment variable (--strict-env)"+didYouMean(n))
				} else {
					fmt.Fprintln(os.Stderr, "warning: "+n.String())
				}
			}
			if *strictEnv {
				return exitError{1}
			}
		}
		fmt.Printf("%s: ok (policy %s, %d jurisdictions)\n", cfg.Source, pol.Hash()[:12], len(pol.Jurisdictions()))
		return nil
	}
	return cmd
}

// didYouMean is the " (did you mean X?)" hint of an unknown variable, or "".
func didYouMean(n config.EnvNotice) string {
	if n.DidYouMean == "" {
		return ""
	}
	return " (did you mean " + n.DidYouMean + "?)"
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			fmt.Println("jurisdns", app.Version)
		},
	}
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Configuration helpers"}
	cmd.AddCommand(&cobra.Command{
		Use:   "default",
		Short: "Print the embedded default configuration",
		Args:  cobra.NoArgs,
		Run: func(*cobra.Command, []string) {
			_, _ = os.Stdout.Write(config.Default())
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
	config.RegisterFlags(cmd.Flags())
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
		fmt.Println("ok")
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

func splitErr(err error) []string {
	var out []string
	for _, line := range strings.Split(err.Error(), "\n") {
		if strings.TrimSpace(line) != "" {
			out = append(out, line)
		}
	}
	return out
}
