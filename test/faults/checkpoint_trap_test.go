package faults

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// checkpointWrite is one write of a checkpoint save, as the meter sends
// them in order: the announcement (the first ConfigMap, with the
// "writing" mark), part 1 … n of the generation being written, and the
// commit (the first ConfigMap switched to that generation).
type checkpointWrite struct {
	kind string // "announcement", "part" or "commit"
	part int    // 1 … n, for a part
}

func (w checkpointWrite) String() string {
	if w.kind == "part" {
		return fmt.Sprintf("part %d", w.part)
	}
	return w.kind
}

// writeTrap is a plain-HTTP proxy to kube-apiserver between the metering
// process and the API server (the process authenticates with its token,
// which the proxy passes on). It recognises the checkpoint's writes and
// SIGKILLs the process at an armed point: when a write arrives, before it
// is forwarded (the API server never sees it), or when the API server has
// applied it, before its answer reaches the process (a write that timed out
// after the server applied it looks the same to the process). client-go
// sends no token over plain HTTP: the proxy adds the ServiceAccount's.
type writeTrap struct {
	server *http.Server
	addr   string
	proxy  *httputil.ReverseProxy
	// token is the metering ServiceAccount's.
	token string

	mu sync.Mutex
	// parts counts the data parts written since the first ConfigMap was
	// last written.
	parts int
	// The armed kill, if any.
	armed  *trapArm
	killed chan string
}

type trapArm struct {
	victim *replica
	write  checkpointWrite
	after  bool
}

type trapKey struct{}

// startWriteTrap starts the proxy; it stops when the spec ends.
func startWriteTrap() *writeTrap {
	GinkgoHelper()
	target, err := url.Parse(fw.Config.Host)
	Expect(err).NotTo(HaveOccurred())
	roots := x509.NewCertPool()
	Expect(roots.AppendCertsFromPEM(fw.Config.CAData)).To(BeTrue(), "a CA certificate in the admin config")
	p := &writeTrap{killed: make(chan string, 1)}
	p.proxy = httputil.NewSingleHostReverseProxy(target)
	p.proxy.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true}
	p.proxy.FlushInterval = -1 // watches stream
	p.proxy.ModifyResponse = p.afterWrite
	p.proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	l, err := framework.Listen("127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	p.addr = l.Addr().String()
	p.server = &http.Server{Handler: p}
	go func() { _ = p.server.Serve(l) }()
	DeferCleanup(func() { _ = p.server.Close() })
	return p
}

// kubeconfig writes a kubeconfig of the metering ServiceAccount that
// reaches the API server through the proxy.
func (p *writeTrap) kubeconfig() string {
	GinkgoHelper()
	cfg, err := clientcmd.LoadFromFile(kubeconfigs[meteringAccount])
	Expect(err).NotTo(HaveOccurred())
	for _, c := range cfg.Clusters {
		c.Server, c.CertificateAuthorityData = "http://"+p.addr, nil
	}
	for _, a := range cfg.AuthInfos {
		p.mu.Lock()
		p.token = a.Token
		p.mu.Unlock()
	}
	path := filepath.Join(GinkgoT().TempDir(), "metering-via-trap.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}

// arm makes the trap kill victim at its next save's write (after the API
// server applied it, or before it is forwarded).
func (p *writeTrap) arm(victim *replica, write checkpointWrite, after bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = &trapArm{victim: victim, write: write, after: after}
}

// disarm takes the armed kill back.
func (p *writeTrap) disarm() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.armed = nil
}

// ServeHTTP forwards a request, unless it is a checkpoint write the trap
// kills the process at before it reaches the API server.
func (p *writeTrap) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p.mu.Lock()
	req.Header.Set("Authorization", "Bearer "+p.token)
	p.mu.Unlock()
	if write, ok := p.classify(req); ok {
		if p.fire(write, false) {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		req = req.WithContext(context.WithValue(req.Context(), trapKey{}, write))
	}
	p.proxy.ServeHTTP(w, req)
}

var errKilledByTrap = errors.New("the process was killed before this answer reached it")

// afterWrite kills the process once the API server has applied the write
// the trap is armed for, before the answer reaches it.
func (p *writeTrap) afterWrite(resp *http.Response) error {
	write, ok := resp.Request.Context().Value(trapKey{}).(checkpointWrite)
	if ok && resp.StatusCode < 300 && p.fire(write, true) {
		return errKilledByTrap
	}
	return nil
}

// fire kills the armed victim if the write is its point, and reports
// whether it did.
func (p *writeTrap) fire(write checkpointWrite, after bool) bool {
	p.mu.Lock()
	arm := p.armed
	if arm == nil || arm.write != write || arm.after != after {
		p.mu.Unlock()
		return false
	}
	p.armed = nil
	p.mu.Unlock()
	arm.victim.Kill()
	when := "before the API server saw it"
	if after {
		when = "after the API server applied it"
	}
	p.killed <- fmt.Sprintf("at %s of a save, %s", write, when)
	return true
}

// classify recognises a write of the checkpoint (a create or update of one
// of its ConfigMaps) and says which write of its save it is; it follows
// the saves as they go by.
func (p *writeTrap) classify(req *http.Request) (checkpointWrite, bool) {
	const configMaps = "/api/v1/namespaces/" + releaseNamespace + "/configmaps"
	if (req.Method != http.MethodPut && req.Method != http.MethodPost) || !strings.HasPrefix(req.URL.Path, configMaps) {
		return checkpointWrite{}, false
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	req.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return checkpointWrite{}, false
	}
	// An update names its ConfigMap in the path; a create in the body
	// (JSON or protobuf: the name is there as it is).
	name := strings.TrimPrefix(strings.TrimPrefix(req.URL.Path, configMaps), "/")
	head := checkpoint.DefaultName
	if name == "" {
		name = head
		for _, n := range checkpoint.Names(head, checkpoint.DefaultParts)[1:] {
			if bytes.Contains(body, []byte(`"`+n+`"`)) || bytes.Contains(body, append([]byte{byte(len(n))}, n...)) {
				name = n
				break
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var write checkpointWrite
	switch {
	case name == head && bytes.Contains(body, []byte(headWritingKey)):
		write = checkpointWrite{kind: "announcement"}
		p.parts = 0
	case name == head:
		write = checkpointWrite{kind: "commit"}
		p.parts = 0
	case strings.HasPrefix(name, head+"-"):
		p.parts++
		write = checkpointWrite{kind: "part", part: p.parts}
	default:
		return checkpointWrite{}, false
	}
	return write, true
}
