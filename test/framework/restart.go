package framework

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// WithRestartableAPIServer keeps kube-apiserver's certificates and
// ServiceAccount signing key in certDir, so that RestartAPIServer can stop
// and start it again as a restart does in a cluster: same address, same
// serving certificate, tokens still valid, and etcd (which keeps running)
// still holding every object. envtest otherwise puts them into a
// directory it deletes on Stop, and a restarted API server would have a
// new CA and reject every token issued before. The port is one below the
// kernel's ephemeral range, which nothing else (no client connection, no
// other test's listener on port 0) takes while the API server is down.
func WithRestartableAPIServer(certDir string) func(*envtest.Environment) {
	return func(env *envtest.Environment) {
		s := env.ControlPlane.GetAPIServer()
		s.CertDir = certDir
		if port, err := portBelowEphemeralRange(); err == nil {
			s.Address, s.Port = "127.0.0.1", strconv.Itoa(port)
		}
	}
}

// portBelowEphemeralRange is a free loopback port below
// net.ipv4.ip_local_port_range.
func portBelowEphemeralRange() (int, error) {
	low := 32768
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if fields := strings.Fields(string(data)); len(fields) == 2 {
			if n, err := strconv.Atoi(fields[0]); err == nil {
				low = n
			}
		}
	}
	if low < 4096 {
		return 0, errors.New("the ephemeral port range starts too low")
	}
	for range 100 {
		port := low - 1 - rand.IntN(min(low-2048, 10000))
		l, err := Listen("127.0.0.1:" + strconv.Itoa(port))
		if err == nil {
			_ = l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port below the ephemeral range")
}

// RestartAPIServer stops kube-apiserver, leaves it down for the given time
// and starts it again on the same address; it returns when the API server
// is healthy. stopped is when it stopped accepting connections (Stop
// returned), started when it answered its health check again.
func (f *Framework) RestartAPIServer(down time.Duration) (stopped, started time.Time, err error) {
	s := f.Env.ControlPlane.APIServer
	if s == nil || s.CertDir == "" {
		return time.Time{}, time.Time{}, errors.New("start the control plane WithRestartableAPIServer to restart its API server")
	}
	if s.Port == "" {
		return time.Time{}, time.Time{}, errors.New("the API server has no fixed port")
	}
	addr := s.Address + ":" + s.Port
	if err := s.Stop(); err != nil {
		return time.Time{}, time.Time{}, fmt.Errorf("stopping kube-apiserver: %w", err)
	}
	stopped = time.Now()
	time.Sleep(down) // the outage: a span of time is what a test of it needs
	if err := s.Start(); err != nil {
		return stopped, time.Time{}, fmt.Errorf("starting kube-apiserver again: %w", err)
	}
	started = time.Now()
	if again := s.Address + ":" + s.Port; again != addr {
		return stopped, started, fmt.Errorf("kube-apiserver came back on %s, not %s", again, addr)
	}
	return stopped, started, nil
}
