package main

import (
	"fmt"
	"io"
	"net/netip"
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
// would (URL sources from the network, within lists.deadline, else from the
// last good copy in lists.cache_dir). Which lists come from a last good
// copy, and the progress of a long download, go to stderr.
func loadPolicy(cmd *cobra.Command) (*config.Config, *policy.Policy, error) {
	cfg, err := app.LoadConfig(config.LoadOptions{Flags: cmd.Flags()})
	if err != nil {
		return nil, nil, err
	}
	pol, err := app.BuildPolicyWith(cmd.Context(), cfg, app.PolicyOptions{Notes: cmd.ErrOrStderr()})
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
		Long: `check explains what a client gets for NAME under the configured policy: the
client's jurisdictions, every matching rule, the decision and the answer. It
exits 1 when NAME is not a valid domain name.`,
		Args: cobra.ExactArgs(1),
	}
	configFlag(cmd.Flags())
	cmd.Flags().StringVar(&client, "client", "", "client address (default: a client of the default jurisdictions)")
	cmd.Flags().StringVar(&qtype, "type", "A", "query type of the rendered answer")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var addr netip.Addr
		if client != "" {
			var err error
			if addr, err = netip.ParseAddr(client); err != nil {
				return fmt.Errorf("--client: %w", err)
			}
		}
		qt, ok := dns.StringToType[strings.ToUpper(qtype)]
		if !ok {
			return fmt.Errorf("--type: unknown query type %q", qtype)
		}
		_, pol, err := loadPolicy(cmd)
		if err != nil {
			return err
		}
		res := status.Check(pol, args[0], addr, qt, time.Now())
		if asJSON {
			if err := printJSON(cmd.OutOrStdout(), res); err != nil {
				return err
			}
		} else {
			printCheck(cmd.OutOrStdout(), &res)
		}
		if res.NameError != "" {
			return exitError{1}
		}
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
		Long: `lists builds the policy from the configuration as serve would (downloading URL
sources) and prints every jurisdiction. ` + "`jurisdns status`" + ` prints the same from the
running server, without downloading anything. --json prints the shape of the
admin API's GET /api/status.`,
		Args: cobra.NoArgs,
	}
	configFlag(cmd.Flags())
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (the shape of GET /api/status)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		_, pol, err := loadPolicy(cmd)
		if err != nil {
			return err
		}
		page := status.PolicyPage(pol, time.Now())
		if asJSON {
			return printJSON(cmd.OutOrStdout(), page)
		}
		return printJurisdictions(cmd.OutOrStdout(), page)
	}
	return cmd
}

// printJurisdictions prints the jurisdictions of a status page: what
// `jurisdns lists` (from the configuration) and `jurisdns status` (from
// the running server) show.
func printJurisdictions(w io.Writer, p *status.Page) error {
	fmt.Fprintf(w, "policy %s; default jurisdictions: %s\n", p.PolicyHash[:min(12, len(p.PolicyHash))], strings.Join(p.DefaultJurisdictions, ", "))
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tTIER\tMODE\tACTION\tEDE\tENTRIES\tSOURCES\tBAD\tHASH")
	for _, j := range p.Jurisdictions {
		var srcs []string
		bad := 0
		for _, s := range j.Sources {
			srcs = append(srcs, s.Name)
			bad += s.Bad
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\n", j.ID, j.Status, j.Tier, j.Mode, j.Action, j.EDE, j.Entries,
			strings.Join(srcs, ","), bad, j.Hash[:min(12, len(j.Hash))])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// The primary instrument of each jurisdiction and its first public
	// source (all of them: --json, or docs/jurisdictions.md).
	fmt.Fprintln(w, "instruments:")
	for _, j := range p.Jurisdictions {
		switch {
		case len(j.Instruments) > 0 && len(j.Instruments[0].Links) > 0:
			l := j.Instruments[0].Links[0]
			fmt.Fprintf(tw, "  %s\t%s\t%s: %s\n", j.ID, j.Instruments[0].Name, l.Title, l.URL)
		case len(j.Links) > 0:
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", j.ID, j.Instrument, j.Links[0])
		case j.Instrument != "":
			fmt.Fprintf(tw, "  %s\t%s\t\n", j.ID, j.Instrument)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, j := range p.Jurisdictions {
		for _, s := range j.Sources {
			if s.Error != "" {
				fmt.Fprintf(w, "%s/%s: %s\n", j.ID, s.Name, s.Error)
			}
			for _, l := range s.BadLines {
				fmt.Fprintf(w, "%s/%s: bad line %s\n", j.ID, s.Name, l)
			}
			if s.Transfer != nil {
				fmt.Fprintln(w, transferLine(j.ID, s))
			}
		}
	}
	for _, n := range p.NotCurrent {
		fmt.Fprintf(w, "not current: %s\n", n)
	}
	return nil
}

// transferLine describes a source pulled by zone transfer: zone, serial,
// primary, last transfer and NOTIFY, and the RPZ triggers it skipped.
func transferLine(id string, s status.Source) string {
	t := s.Transfer
	when := func(x time.Time) string {
		if x.IsZero() {
			return "never"
		}
		return x.UTC().Format(time.RFC3339)
	}
	primary := t.Primary
	if primary == "" {
		primary = "none"
	}
	line := fmt.Sprintf("%s/%s: zone %s serial %d from %s, last transfer %s, last NOTIFY %s, %d entries, %d unsupported triggers skipped",
		id, s.Name, t.Zone, t.Serial, primary, when(t.LastTransfer), when(t.LastNotify), s.Entries, s.Skipped)
	if t.Rejected > 0 {
		line += fmt.Sprintf(", %d transfers rejected", t.Rejected)
	}
	if t.LastError != "" {
		line += "; last error: " + t.LastError
	}
	return line
}
