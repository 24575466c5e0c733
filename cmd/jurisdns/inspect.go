package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/miekg/dns"
	"github.com/spf13/cobra"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/status"
)

// loadPolicy loads the configuration and builds the policy exactly as serve
// would (URL sources from the download cache or the network).
func loadPolicy(cmd *cobra.Command) (*config.Config, *policy.Policy, error) {
	cfg, err := app.LoadConfig(config.LoadOptions{Flags: cmd.Flags()})
	if err != nil {
		return nil, nil, err
	}
	pol, err := app.BuildPolicy(context.Background(), cfg)
	if err != nil {
		return cfg, nil, err
	}
	return cfg, pol, nil
}

func newCheck() *cobra.Command {
	var client, qtype string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check [--client IP] NAME",
		Short: "Explain the verdict for NAME: jurisdictions, matching rules, tier, answer",
		Args:  cobra.ExactArgs(1),
	}
	config.RegisterFlags(cmd.Flags())
	cmd.Flags().StringVar(&client, "client", "", "client address (default: a client of the default jurisdictions)")
	cmd.Flags().StringVar(&qtype, "type", "A", "query type of the rendered answer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		_, pol, err := loadPolicy(cmd)
		if err != nil {
			return err
		}
		var addr netip.Addr
		if client != "" {
			if addr, err = netip.ParseAddr(client); err != nil {
				return fmt.Errorf("--client: %w", err)
			}
		}
		qt, ok := dns.StringToType[strings.ToUpper(qtype)]
		if !ok {
			return fmt.Errorf("--type: unknown query type %q", qtype)
		}
		res := status.Check(pol, args[0], addr, qt, time.Now())
		if asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(res)
		}
		printCheck(os.Stdout, &res)
		return nil
	}
	return cmd
}

func printCheck(w io.Writer, r *status.CheckResult) {
	ex := &r.Explanation
	if ex.NameError != "" {
		fmt.Fprintf(w, "%s: not a valid name: %s\n", ex.Name, ex.NameError)
		return
	}
	verdict := "NOT BLOCKED"
	switch ex.Decision {
	case "block":
		verdict = "BLOCKED by " + ex.Jurisdiction
	case "fail_closed":
		verdict = "SERVFAIL: " + ex.Jurisdiction + " failed to load (fail_closed)"
	}
	fmt.Fprintf(w, "%s: %s\n", ex.Canonical, verdict)
	client := ex.Client
	if client == "" {
		client = "(any)"
	}
	fmt.Fprintf(w, "client:   %s → entry %q %s\n", client, ex.ClientEntry, ex.ClientSubnet)
	fmt.Fprintf(w, "policy:   %s at %s\n", ex.PolicyHash[:min(12, len(ex.PolicyHash))], ex.Time.Format(time.RFC3339))
	fmt.Fprintln(w, "jurisdictions of this client:")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	for _, j := range ex.Jurisdictions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\tentries %d\n", j.ID, j.Tier, j.Mode, j.Status, j.Entries)
	}
	_ = tw.Flush()
	if len(ex.Matches) == 0 {
		fmt.Fprintln(w, "matching rules: none")
	} else {
		fmt.Fprintln(w, "matching rules:")
		for _, m := range ex.Matches {
			kind := "block"
			if m.Allow {
				kind = "allow"
			}
			fmt.Fprintf(tw, "  %s\t%s %s (%s)\t%s:%d\t%s/%s/%s\t%s", m.Jurisdiction, kind, m.Rule, m.Kind, m.Source, m.Line, m.Tier, m.Mode, m.Status, m.Outcome)
			if m.LiftedBy != "" {
				fmt.Fprintf(tw, " (lifted by %s)", m.LiftedBy)
			}
			fmt.Fprintln(tw)
		}
		_ = tw.Flush()
	}
	if len(ex.Reported) > 0 {
		fmt.Fprintf(w, "report-only hits: %s\n", strings.Join(ex.Reported, ", "))
	}
	if len(ex.Elsewhere) > 0 {
		fmt.Fprintf(w, "also listed by (not applied to this client): %s\n", strings.Join(ex.Elsewhere, ", "))
	}
	if ex.Decision == "block" {
		fmt.Fprintf(w, "decision: %s (tier %s), instrument %q, rule %s in %s line %d, action %s\n",
			ex.Jurisdiction, ex.Tier, ex.Instrument, ex.Rule, ex.Source, ex.Line, ex.Action)
		if in := ex.InstrumentInfo; in != nil {
			since := ""
			if !in.Date.IsZero() {
				since = ", in force from " + policy.FormatDate(in.Date)
			}
			fmt.Fprintf(w, "instrument: %s%s: %s\n", in.Issuer, since, in.Scope)
			for _, l := range in.Links {
				fmt.Fprintf(w, "  %s: %s\n", l.Title, l.URL)
			}
		}
	}
	if a := r.Answer; a != nil {
		fmt.Fprintf(w, "answer:   %s\n", a.Rcode)
		for _, s := range a.Answer {
			fmt.Fprintf(w, "  %s\n", s)
		}
		for _, s := range a.Authority {
			fmt.Fprintf(w, "  %s\n", s)
		}
		if a.EDE != "" {
			fmt.Fprintf(w, "  EDE %s\n", a.EDE)
		}
		if a.Note != "" {
			fmt.Fprintf(w, "  %s\n", a.Note)
		}
	}
}

func newLists() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "lists",
		Short: "Print every jurisdiction: status, entries, sources, bad lines, list hash",
		Args:  cobra.NoArgs,
	}
	config.RegisterFlags(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		_, pol, err := loadPolicy(cmd)
		if err != nil {
			return err
		}
		now := time.Now()
		type row struct {
			*policy.Jurisdiction
			Status  string `json:"status"`
			Entries int    `json:"entries"`
		}
		var rows []row
		for _, j := range pol.Jurisdictions() {
			rows = append(rows, row{Jurisdiction: j, Status: j.Status(now), Entries: pol.Entries(j.ID)})
		}
		if asJSON {
			enc := json.NewEncoder(os.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(map[string]any{"policy_hash": pol.Hash(), "default_jurisdictions": pol.DefaultJurisdictions(), "jurisdictions": rows})
		}
		fmt.Printf("policy %s; default jurisdictions: %s\n", pol.Hash()[:12], strings.Join(pol.DefaultJurisdictions(), ", "))
		tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tTIER\tMODE\tACTION\tEDE\tENTRIES\tSOURCES\tBAD\tHASH")
		for _, r := range rows {
			var srcs []string
			bad := 0
			for _, s := range r.Sources {
				srcs = append(srcs, s.Name)
				bad += s.Bad
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", r.ID, r.Status, r.Tier, r.Mode, r.Action, r.EDE, r.Entries,
				strings.Join(srcs, ","), bad, r.Hash[:min(12, len(r.Hash))])
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		// The primary instrument of each jurisdiction and its first source
		// (all of them: --json, or docs/jurisdictions.md for shipped ones).
		fmt.Println("sources:")
		for _, r := range rows {
			if len(r.Instruments) > 0 && len(r.Instruments[0].Links) > 0 {
				l := r.Instruments[0].Links[0]
				fmt.Fprintf(tw, "  %s\t%s\t%s: %s\n", r.ID, r.Instruments[0].Name, l.Title, l.URL)
			} else if len(r.Links) > 0 {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", r.ID, r.Instrument, r.Links[0])
			}
		}
		return tw.Flush()
	}
	return cmd
}
