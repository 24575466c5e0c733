package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/status"
)

// adminClient talks to the admin API of a running jurisdns: its address
// and bearer token come from the configuration (admin, admin_auth.token_file)
// unless --admin and --token-file say otherwise.
type adminClient struct {
	base    string // http://host:port
	token   string
	timeout time.Duration
}

type adminFlags struct {
	addr, tokenFile string
	timeout         time.Duration
}

func (f *adminFlags) register(cmd *cobra.Command, timeout time.Duration) {
	configFlag(cmd.Flags())
	cmd.Flags().StringVar(&f.addr, "admin", "", "admin address of the running server, host:port (default: the admin key of the configuration)")
	cmd.Flags().StringVar(&f.tokenFile, "token-file", "", "file holding the admin bearer token (default: admin_auth.token_file of the configuration)")
	cmd.Flags().DurationVar(&f.timeout, "timeout", timeout, "how long to wait for the answer")
}

func (f *adminFlags) client(cmd *cobra.Command) (*adminClient, error) {
	addr, tokenFile := f.addr, f.tokenFile
	if addr == "" || tokenFile == "" && !cmd.Flags().Changed("token-file") {
		// Only two keys are read: the file may be broken (that is what a
		// reload then reports), so it is not validated here.
		cfg, err := config.Load(config.LoadOptions{Flags: cmd.Flags()})
		if err != nil {
			return nil, err
		}
		if addr == "" {
			if cfg.Admin == "" {
				return nil, errors.New(`the admin listener is off in the configuration (admin: ""): pass --admin host:port`)
			}
			addr = probeAddr(cfg.Admin)
		}
		if tokenFile == "" {
			tokenFile = cfg.AdminAuth.TokenFile
		}
	}
	c := &adminClient{base: "http://" + addr, timeout: f.timeout}
	if tokenFile != "" {
		b, err := os.ReadFile(tokenFile)
		if err != nil {
			return nil, fmt.Errorf("admin token: %w", err)
		}
		c.token = strings.TrimRight(string(b), "\r\n")
	}
	return c, nil
}

// do sends one request and returns the status and body; a refused
// connection or a 401 gets an error that says what to check.
func (c *adminClient) do(ctx context.Context, method, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return 0, nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("admin API %s: %w (is jurisdns running with this admin address?)", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("admin API %s%s: %w", c.base, path, err)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		if c.token == "" {
			return 0, nil, fmt.Errorf("admin API %s: the server wants a bearer token: pass --token-file or set admin_auth.token_file", c.base)
		}
		return 0, nil, fmt.Errorf("admin API %s: the token was refused (401)", c.base)
	}
	return resp.StatusCode, body, nil
}

func newReload() *cobra.Command {
	var f adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Reload the running server (as SIGHUP does) and print what changed",
		Long: `reload asks the running jurisdns, through its admin API (POST /api/reload),
to re-read its configuration and every list, as SIGHUP does, and prints the
result: the policy hash before and after, the rules added and removed per
jurisdiction, the settings that need a restart, or why the reload was
refused (the previous configuration then stays in force). It exits 1 when
the reload was refused.`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, 5*time.Minute)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		code, body, err := c.do(cmd.Context(), http.MethodPost, "/api/reload")
		if err != nil {
			return err
		}
		var rep app.ReloadReport
		if code != http.StatusOK && code != http.StatusUnprocessableEntity || json.Unmarshal(body, &rep) != nil {
			return fmt.Errorf("admin API %s/api/reload: %d %s", c.base, code, strings.TrimSpace(string(body)))
		}
		if asJSON {
			_, _ = cmd.OutOrStdout().Write(body)
		} else {
			printReload(cmd.OutOrStdout(), &rep)
		}
		if !rep.OK {
			return exitError{1}
		}
		return nil
	}
	return cmd
}

func printReload(w io.Writer, r *app.ReloadReport) {
	short := func(h string) string { return h[:min(12, len(h))] }
	if !r.OK {
		fmt.Fprintf(w, "reload refused; still serving policy %s\n", short(r.PolicyHash))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
		return
	}
	if r.Changed {
		fmt.Fprintf(w, "reloaded: policy %s (was %s) in %.3fs\n", short(r.PolicyHash), short(r.PreviousHash), r.TookSeconds)
	} else {
		fmt.Fprintf(w, "reloaded: policy %s unchanged in %.3fs\n", short(r.PolicyHash), r.TookSeconds)
	}
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	changed := 0
	for _, j := range r.Jurisdictions {
		if j.Added == 0 && j.Removed == 0 && !j.New {
			continue
		}
		if changed == 0 {
			fmt.Fprintln(tw, "  JURISDICTION\tENTRIES\tADDED\tREMOVED")
		}
		changed++
		id := j.ID
		if j.New {
			id += " (new)"
		}
		fmt.Fprintf(tw, "  %s\t%d\t+%d\t-%d\n", id, j.Entries, j.Added, j.Removed)
	}
	_ = tw.Flush()
	if changed == 0 {
		fmt.Fprintf(w, "no rule changed in %d jurisdictions\n", len(r.Jurisdictions))
	} else if rest := len(r.Jurisdictions) - changed; rest > 0 {
		fmt.Fprintf(w, "%d other jurisdictions unchanged\n", rest)
	}
	if len(r.Removed) > 0 {
		fmt.Fprintf(w, "removed jurisdictions: %s\n", strings.Join(r.Removed, ", "))
	}
	for _, k := range r.RestartRequired {
		fmt.Fprintf(w, "changed, applies only after a restart: %s\n", k)
	}
	for _, n := range r.NotCurrent {
		fmt.Fprintf(w, "not current: %s\n", n)
	}
}

func newStatus() *cobra.Command {
	var f adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print the jurisdictions of the running server, as lists does, without downloading anything",
		Long: `status asks the running jurisdns, through its admin API (GET /api/status), for
the policy in force and prints every jurisdiction as ` + "`jurisdns lists`" + ` does, with
when the policy was loaded and the list sources that are not current. --json
prints GET /api/status as it is.`,
		Args: cobra.NoArgs,
	}
	f.register(cmd, 30*time.Second)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (GET /api/status)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := f.client(cmd)
		if err != nil {
			return err
		}
		code, body, err := c.do(cmd.Context(), http.MethodGet, "/api/status")
		if err != nil {
			return err
		}
		var p status.Page
		if code != http.StatusOK || json.Unmarshal(body, &p) != nil {
			return fmt.Errorf("admin API %s/api/status: %d %s", c.base, code, strings.TrimSpace(string(bytes.TrimSpace(body[:min(len(body), 512)]))))
		}
		if asJSON {
			_, err := cmd.OutOrStdout().Write(body)
			return err
		}
		w := cmd.OutOrStdout()
		fmt.Fprintf(w, "jurisdns %s at %s; policy loaded %s, in force since %s\n", p.Version, c.base,
			p.PolicyLoaded.Format(time.RFC3339), p.PolicySince.Format(time.RFC3339))
		if a := p.Audit; a != nil {
			if a.Writing {
				fmt.Fprintf(w, "enforcement log %s: writing, %d lines (head seq %d)\n", a.Path, a.Written, a.HeadSeq)
			} else {
				fmt.Fprintf(w, "enforcement log %s: NOT WRITING since %s: %s\n", a.Path, a.FailingSince.Format(time.RFC3339), a.Error)
			}
		}
		return printJurisdictions(w, &p)
	}
	return cmd
}
