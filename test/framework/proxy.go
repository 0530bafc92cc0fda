package framework

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
)

// Proxy forwards TCP connections to the API server, so that a test can take
// the API server away from a client (every connection dropped, new ones
// refused) and bring it back, as an outage or a restart of kube-apiserver
// looks from the client's side.
type Proxy struct {
	target string
	addr   string

	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]struct{}
}

// StartProxy forwards a port on 127.0.0.1 to the host of apiServerURL.
func StartProxy(apiServerURL string) (*Proxy, error) {
	u, err := url.Parse(apiServerURL)
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: u.Host, conns: map[net.Conn]struct{}{}}
	if err := p.listen("127.0.0.1:0"); err != nil {
		return nil, err
	}
	return p, nil
}

// URL is the proxy's address in the form of the API server's URL.
func (p *Proxy) URL() string { return "https://" + p.addr }

func (p *Proxy) listen(addr string) error {
	ln, err := Listen(addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.listener, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go p.serve(ln)
	return nil
}

func (p *Proxy) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		go p.forward(client)
	}
}

func (p *Proxy) forward(client net.Conn) {
	var d net.Dialer
	server, err := d.DialContext(context.Background(), "tcp", p.target)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.listener == nil {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = dst.Close()
	}
	go pipe(server, client)
	go pipe(client, server)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// Down refuses new connections and drops the open ones.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		_ = p.listener.Close()
		p.listener = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// Up accepts connections again on the same address.
func (p *Proxy) Up() error {
	p.mu.Lock()
	up := p.listener != nil
	p.mu.Unlock()
	if up {
		return errors.New("the proxy is up already")
	}
	return p.listen(p.addr)
}

// Close stops the proxy for good.
func (p *Proxy) Close() { p.Down() }
