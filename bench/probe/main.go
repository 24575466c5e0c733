// Command probe waits until a DNS server gives the expected answer for a
// name, then prints the seconds elapsed since -since (a Unix time in
// nanoseconds, e.g. `date +%s%N` taken just before the server started or
// was told to reload); with -once it asks once and prints the rcode.
// bench/run.sh uses it for time-to-ready and for the
// time until a reloaded list is in force. It queries only -server.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func main() {
	server := flag.String("server", "127.0.0.1:5303", "server to query (UDP)")
	name := flag.String("name", "", "name to ask for (A)")
	want := flag.String("rcode", "NXDOMAIN", "rcode that ends the wait")
	since := flag.Int64("since", 0, "Unix time in ns to measure from (0: now)")
	every := flag.Duration("every", 5*time.Millisecond, "pause between tries")
	limit := flag.Duration("timeout", 10*time.Minute, "give up after this long")
	once := flag.Bool("once", false, "ask once and print the rcode (or \"error\")")
	flag.Parse()
	if *name == "" {
		fmt.Fprintln(os.Stderr, "probe: -name is required")
		os.Exit(2)
	}
	wantCode, ok := dns.StringToRcode[strings.ToUpper(*want)]
	if !ok {
		fmt.Fprintf(os.Stderr, "probe: unknown rcode %q\n", *want)
		os.Exit(2)
	}
	start := time.Now()
	if *since != 0 {
		start = time.Unix(0, *since)
	}
	c := &dns.Client{Net: "udp", Timeout: 200 * time.Millisecond}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(*name), dns.TypeA)
	if *once {
		r, _, err := c.Exchange(q, *server)
		if err != nil {
			fmt.Println("error")
			return
		}
		fmt.Println(dns.RcodeToString[r.Rcode])
		return
	}
	deadline := time.Now().Add(*limit)
	last := "no answer"
	// A try that waited out the client's timeout adds up to 200 ms to the
	// figure: said on stderr, so that a slow figure can be told from a
	// slow server.
	var timedOut []string
	for time.Now().Before(deadline) {
		q.Id = dns.Id()
		sent := time.Since(start)
		r, _, err := c.Exchange(q, *server)
		switch {
		case err != nil:
			last = err.Error()
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				timedOut = append(timedOut, fmt.Sprintf("%.3f", sent.Seconds()))
			}
		case r.Rcode == wantCode:
			if len(timedOut) > 0 {
				fmt.Fprintf(os.Stderr, "probe: %s: no answer within %v to the tries sent at %s s\n", *server, c.Timeout, strings.Join(timedOut, ", "))
			}
			fmt.Printf("%.3f\n", time.Since(start).Seconds())
			return
		default:
			last = dns.RcodeToString[r.Rcode]
		}
		time.Sleep(*every)
	}
	fmt.Fprintf(os.Stderr, "probe: %s never answered %s for %s (last: %s)\n", *server, *want, *name, last)
	os.Exit(1)
}
