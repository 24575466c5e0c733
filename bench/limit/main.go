// Command limit is the reference point of bench/run.sh: the plainest
// miekg/dns server there is. dns.Server (one goroutine per packet, full
// unpack and pack), a handler that answers every query at once with one
// fixed record and nothing else: no cache, no policy, no upstream. What a
// resolver built on the same library reaches before it does any work.
package main

import (
	"flag"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/miekg/dns"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:5301", "UDP address to serve")
	flag.Parse()

	a4 := net.IPv4(192, 0, 2, 1).To4()
	a6 := net.ParseIP("2001:db8::1")
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		m.RecursionAvailable = true
		if len(q.Question) == 1 {
			h := dns.RR_Header{Name: q.Question[0].Name, Class: dns.ClassINET, Ttl: 300, Rrtype: q.Question[0].Qtype}
			switch q.Question[0].Qtype {
			case dns.TypeA:
				m.Answer = []dns.RR{&dns.A{Hdr: h, A: a4}}
			case dns.TypeAAAA:
				m.Answer = []dns.RR{&dns.AAAA{Hdr: h, AAAA: a6}}
			}
		}
		_ = w.WriteMsg(m)
	})

	srv := &dns.Server{Addr: *addr, Net: "udp", Handler: handler, NotifyStartedFunc: func() {
		log.Printf("limit: serving udp %s", *addr)
	}}
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
		<-sig
		_ = srv.Shutdown()
	}()
	if err := srv.ListenAndServe(); err != nil {
		log.Fatal(err)
	}
}
