package framework

import (
	"context"
	"net"
)

// Listen listens on the TCP address ("127.0.0.1:0" for a free loopback
// port).
func Listen(addr string) (net.Listener, error) {
	var lc net.ListenConfig
	return lc.Listen(context.Background(), "tcp", addr)
}

// FreeAddress is a loopback address, 127.0.0.1:<port>, that nothing listens
// on right now: for a process under test to bind.
func FreeAddress() (string, error) {
	l, err := Listen("127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}
