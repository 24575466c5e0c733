// Command gen writes the data of the benchmark (bench/run.sh) into one
// directory. Its output depends only on its flags: the same flags give the
// same bytes (fixed seed, no clock, no map iteration).
//
//	zone.db               the zone knot serves upstream: hit names, a wildcard
//	                      that answers every miss name, SOA and NS
//	list.txt              the jurisdiction: -list names, one per line (domains
//	                      format), none of them under the zone
//	unbound-list.conf     the same names as Unbound `local-zone: "x." always_nxdomain`
//	q-hit.txt             dnsperf input: -hit names under the zone, A and AAAA, shuffled
//	q-blocked.txt         dnsperf input: names taken from the list, the listed name
//	                      itself or a name below it (suffix match), A and AAAA
//	q-miss-N.txt          dnsperf input: -miss unique names under the zone, for
//	                      throughput run N (1..-miss-files); no name in two files
//	q-miss-p99.txt        dnsperf input: -miss-p99 other unique names (fixed-rate run)
//	q-mixed.txt           dnsperf input: hit and blocked interleaved (reload run)
//	probe.txt             key=value lines the script reads: names for probes
package main

import (
	"bufio"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Zone is the zone knot serves; the list never reaches under it.
const Zone = "bench.example"

// tlds of the listed names. None of them is special to a resolver
// (test., invalid., localhost., onion., example. are avoided).
var tlds = []string{"com", "net", "org", "io", "ai", "app", "dev", "xyz", "cn", "ru", "co", "me", "info", "biz", "cloud", "tech"}

// words give the listed names a few different shapes.
var words = []string{"blocked", "chat", "llm", "genai", "assist", "model", "agent", "copilot"}

func main() {
	out := flag.String("out", "", "output directory (created)")
	nList := flag.Int("list", 1_000_000, "names in the jurisdiction list")
	nHit := flag.Int("hit", 1000, "distinct hit names (each queried for A and AAAA)")
	nBlocked := flag.Int("blocked", 100_000, "lines of q-blocked.txt")
	nMiss := flag.Int("miss", 2_000_000, "lines of each q-miss-N.txt (unique names)")
	missFiles := flag.Int("miss-files", 1, "number of q-miss-N.txt files")
	nMissP99 := flag.Int("miss-p99", 200_000, "lines of q-miss-p99.txt (unique names)")
	seed := flag.Uint64("seed", 20250801, "random seed")
	flag.Parse()
	if *out == "" {
		log.Fatal("gen: -out is required")
	}
	if *nList < 1 || *nHit < 1 || *nBlocked < 1 || *nMiss < 1 || *nMissP99 < 1 || *missFiles < 1 {
		log.Fatal("gen: every count must be at least 1")
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		log.Fatal(err)
	}
	g := &gen{dir: *out, rng: rand.New(rand.NewPCG(*seed, *seed^0x9e3779b97f4a7c15))}

	list := g.listNames(*nList)
	g.write("list.txt", func(w *bufio.Writer) {
		fmt.Fprintf(w, "# jurisdns benchmark list: %d names (bench/gen, seed %d)\n", len(list), *seed)
		for _, n := range list {
			w.WriteString(n)
			w.WriteByte('\n')
		}
	})
	g.write("unbound-list.conf", func(w *bufio.Writer) {
		w.WriteString("server:\n")
		for _, n := range list {
			fmt.Fprintf(w, "local-zone: \"%s.\" always_nxdomain\n", n)
		}
	})
	g.write("zone.db", func(w *bufio.Writer) { writeZone(w, *nHit) })

	types := []string{"A", "AAAA"}
	hits := make([]string, 0, 2**nHit)
	for i := range *nHit {
		for _, t := range types {
			hits = append(hits, fmt.Sprintf("h%05d.%s %s", i, Zone, t))
		}
	}
	g.shuffle(hits)
	g.write("q-hit.txt", lines(hits))

	prefixes := []string{"", "www.", "api.", "chat.", "cdn.eu."}
	blocked := make([]string, *nBlocked)
	for i := range blocked {
		name := list[g.rng.IntN(len(list))]
		blocked[i] = prefixes[g.rng.IntN(len(prefixes))] + name + " " + types[g.rng.IntN(2)]
	}
	g.write("q-blocked.txt", lines(blocked))

	for i := 1; i <= *missFiles; i++ {
		g.write(fmt.Sprintf("q-miss-%d.txt", i), missNames(fmt.Sprintf("m%d-", i), *nMiss, g.rng))
	}
	g.write("q-miss-p99.txt", missNames("p-", *nMissP99, g.rng))

	mixed := make([]string, 0, 2*len(hits))
	for i := range 2 * len(hits) {
		if i%2 == 0 {
			mixed = append(mixed, hits[i/2])
		} else {
			mixed = append(mixed, blocked[i%len(blocked)])
		}
	}
	g.write("q-mixed.txt", lines(mixed))

	g.write("probe.txt", func(w *bufio.Writer) {
		// ready: a listed name; blocked only once the list is loaded.
		fmt.Fprintf(w, "ready_name=%s\n", list[0])
		// added: a name not in the list, under a TLD the list uses, added
		// by the reload test.
		fmt.Fprintf(w, "added_name=reload-added-%d.ai\n", *seed)
		fmt.Fprintf(w, "hit_name=h00000.%s\n", Zone)
		fmt.Fprintf(w, "zone=%s\n", Zone)
	})
	if g.err != nil {
		log.Fatal(g.err)
	}
}

type gen struct {
	dir string
	rng *rand.Rand
	err error
}

// listNames returns n distinct names in a fixed shuffled order.
func (g *gen) listNames(n int) []string {
	names := make([]string, n)
	for i := range names {
		// i is unique, so names are; the word and TLD vary with it.
		names[i] = fmt.Sprintf("%s-%07d.%s", words[i%len(words)], i, tlds[(i/len(words))%len(tlds)])
	}
	g.shuffle(names)
	return names
}

func (g *gen) shuffle(s []string) {
	g.rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

func (g *gen) write(name string, fill func(*bufio.Writer)) {
	if g.err != nil {
		return
	}
	f, err := os.Create(filepath.Join(g.dir, name))
	if err != nil {
		g.err = err
		return
	}
	w := bufio.NewWriterSize(f, 1<<20)
	fill(w)
	if err := w.Flush(); err != nil {
		g.err = err
	}
	if err := f.Close(); err != nil && g.err == nil {
		g.err = err
	}
}

func lines(s []string) func(*bufio.Writer) {
	return func(w *bufio.Writer) {
		for _, l := range s {
			w.WriteString(l)
			w.WriteByte('\n')
		}
	}
}

// missNames writes n unique names under the zone; the random tag keeps them
// from sharing a visible pattern, the index keeps them unique.
func missNames(prefix string, n int, rng *rand.Rand) func(*bufio.Writer) {
	return func(w *bufio.Writer) {
		for i := range n {
			fmt.Fprintf(w, "%s%08d-%06x.%s A\n", prefix, i, rng.Uint32()&0xffffff, Zone)
		}
	}
}

func writeZone(w *bufio.Writer, nHit int) {
	fmt.Fprintf(w, "$ORIGIN %s.\n$TTL 86400\n", Zone)
	w.WriteString("@ SOA ns hostmaster 1 3600 600 86400 300\n")
	w.WriteString("@ NS ns\n")
	w.WriteString("ns A 127.0.0.1\n")
	for i := range nHit {
		fmt.Fprintf(w, "h%05d A 192.0.2.%d\n", i, 1+i%250)
		fmt.Fprintf(w, "h%05d AAAA 2001:db8::%x\n", i, 1+i)
	}
	// Every miss name is answered by the wildcard, with a TTL long enough
	// that nothing expires during a run.
	w.WriteString("* 3600 A 198.51.100.7\n")
	w.WriteString("* 3600 AAAA 2001:db8::7\n")
}
