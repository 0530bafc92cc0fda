package faults

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// replica is one process of a component, run as a container of the chart's
// Deployment runs: the binary with the Deployment's args, under the token of
// the Deployment's ServiceAccount.
type replica struct {
	*framework.Process
	name string
	// log is the process's stderr (the operator logs there), stdout its
	// stdout (where metering writes usage records).
	log, stdout string
	// probes serves /healthz and /readyz.
	probes string
	// started is when the process was started.
	started time.Time
}

func (r *replica) String() string { return r.name }

// accounts are the chart's ServiceAccounts of its Deployments.
var accounts = map[string]string{"replicator": replicatorAccount, "metering": meteringAccount}

// deploymentArgs are the container args of the chart's Deployments, by
// component, as helm installed them (read once, before any fault).
var deploymentArgs = map[string][]string{}

func readDeploymentArgs(ctx context.Context) error {
	for component := range accounts {
		var d appsv1.Deployment
		if err := fw.Client.Get(ctx, client.ObjectKey{Namespace: releaseNamespace, Name: component}, &d); err != nil {
			return err
		}
		deploymentArgs[component] = d.Spec.Template.Spec.Containers[0].Args
	}
	return nil
}

// launch runs one replica of the component in dir: the args of the chart's
// Deployment, then the out-of-cluster ones (its token's kubeconfig, loopback
// ports for the probes, no metrics server), then extra, which override
// any of them (the flag package keeps the last value).
func launch(dir, component, name string, extra ...string) (*replica, error) {
	args := slices.Clone(deploymentArgs[component])
	probes, err := freeAddress()
	if err != nil {
		return nil, err
	}
	args = append(args, "--kubeconfig="+kubeconfigs[accounts[component]],
		"--health-probe-bind-address="+probes, "--metrics-bind-address=0")
	r := &replica{name: name, log: filepath.Join(dir, name+".log"), stdout: filepath.Join(dir, name+".stdout"),
		probes: probes, started: time.Now()}
	if r.Process, err = framework.StartProcessSplit(binary, r.stdout, r.log, append(args, extra...)...); err != nil {
		return nil, err
	}
	return r, nil
}

// startReplica launches a replica that is stopped when the test ends, and
// whose log the test shows when it fails.
func startReplica(t *testing.T, component, name string, extra ...string) *replica {
	t.Helper()
	r, err := launch(t.TempDir(), component, name, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = r.Stop()
		logTail(t, r)
	})
	return r
}

// logTail shows the end of a replica's log when the test failed, each line
// cut short.
func logTail(t *testing.T, r *replica) {
	if !t.Failed() {
		return
	}
	data, _ := os.ReadFile(r.log)
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	tail := lines[max(0, len(lines)-40):]
	for i, l := range tail {
		if len(l) > 400 {
			tail[i] = l[:400] + "…"
		}
	}
	t.Logf("%s (%s), last %d of %d lines:\n%s", r, r.log, len(tail), len(lines), strings.Join(tail, "\n"))
}

// leads reports whether the replica has acquired its Lease: client-go's
// leader elector logs it (the Lease's holder, hostname_uuid, names no
// process).
func (r *replica) leads() bool {
	data, _ := os.ReadFile(r.log)
	return strings.Contains(strings.ToLower(string(data)), "successfully acquired lease")
}

// ready reports whether /readyz answers 200.
func (r *replica) ready() bool {
	return httpStatus("http://"+r.probes+"/readyz") == http.StatusOK
}

// running reports whether the process has not exited.
func (r *replica) running() bool {
	exited, _ := r.Exited()
	return !exited
}

// leader waits until exactly one of the running replicas leads, and returns
// it.
func leader(g Gomega, within time.Duration, replicas ...*replica) *replica {
	var found *replica
	g.Eventually(func(g Gomega) {
		var leaders []*replica
		for _, r := range replicas {
			if r.running() && r.leads() {
				leaders = append(leaders, r)
			}
		}
		g.Expect(leaders).To(HaveLen(1), "replicas leading")
		found = leaders[0]
	}, within, 100*time.Millisecond).Should(Succeed())
	return found
}

// expectReady waits until every replica is ready, standbys included.
func expectReady(g Gomega, replicas ...*replica) {
	for _, r := range replicas {
		g.Eventually(r.ready, time.Minute, 100*time.Millisecond).Should(BeTrue(), "%s is never ready", r)
	}
}

// lease is the component's Lease, as the chart's Deployments elect a leader
// (--leader-election-id defaults to meshstack-operator-<component>).
func lease(g Gomega, component string) *coordinationv1.Lease {
	var l coordinationv1.Lease
	g.Expect(fw.Client.Get(context.Background(), client.ObjectKey{Namespace: releaseNamespace, Name: "meshstack-operator-" + component}, &l)).To(Succeed())
	return &l
}

// pod runs a component's replica like a Deployment's Pod on a kubelet:
// when the process exits, it is started again — at once the first time,
// then after 10 s, 20 s, 40 s, … up to 5 minutes (CrashLoopBackOff), the
// count starting over once a process has run for 10 minutes.
type pod struct {
	mu     sync.Mutex
	runs   []*replica
	exits  []error
	cancel chan struct{}
	done   chan struct{}
}

const (
	crashLoopInitialDelay = 10 * time.Second
	crashLoopMaxDelay     = 5 * time.Minute
	crashLoopReset        = 10 * time.Minute
)

// crashLoopDelay is how long the kubelet waits before it starts a
// container that has exited crashes times in a row (counting this one).
func crashLoopDelay(crashes int) time.Duration {
	switch {
	case crashes <= 1:
		return 0
	case crashes > 7:
		return crashLoopMaxDelay
	}
	return min(crashLoopInitialDelay<<(crashes-2), crashLoopMaxDelay)
}

// runPod starts the pod; it stops when the test ends.
func runPod(t *testing.T, component, name string, extra ...string) *pod {
	t.Helper()
	p := &pod{cancel: make(chan struct{}), done: make(chan struct{})}
	dir := t.TempDir()
	first, err := launch(dir, component, name+"-0", extra...)
	if err != nil {
		t.Fatal(err)
	}
	p.runs = append(p.runs, first)
	go func() {
		defer close(p.done)
		current, crashes := first, 0
		for {
			select {
			case <-current.Done():
			case <-p.cancel:
				_ = current.Stop()
				return
			}
			_, exit := current.Exited()
			p.mu.Lock()
			p.exits = append(p.exits, exit)
			p.mu.Unlock()
			if time.Since(current.started) > crashLoopReset {
				crashes = 0
			}
			crashes++
			select {
			case <-time.After(crashLoopDelay(crashes)):
			case <-p.cancel:
				return
			}
			next, err := launch(dir, component, fmt.Sprintf("%s-%d", name, len(p.exits)), extra...)
			if err != nil {
				t.Errorf("restarting %s: %v", name, err)
				return
			}
			current = next
			p.mu.Lock()
			p.runs = append(p.runs, current)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		p.stop()
		for _, r := range p.replicas() {
			logTail(t, r)
		}
	})
	return p
}

// stop stops the running process and restarts no more.
func (p *pod) stop() {
	select {
	case <-p.cancel:
	default:
		close(p.cancel)
	}
	<-p.done
}

// replicas are the processes the pod has run, the current one last.
func (p *pod) replicas() []*replica {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*replica(nil), p.runs...)
}

// current is the process the pod runs now (or ran last).
func (p *pod) current() *replica {
	runs := p.replicas()
	return runs[len(runs)-1]
}

// exitErrors are what the pod's processes exited with, in order.
func (p *pod) exitErrors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.exits...)
}

// freeAddress is a loopback address nothing listens on right now.
func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// httpStatus is the status of a GET, 0 when it fails.
func httpStatus(url string) int {
	_, status := httpGet(url)
	return status
}

func httpGet(url string) (string, int) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", 0
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data), resp.StatusCode
}

// startAfresh deletes both components' Leases and the metering
// checkpoint, so that a test's first replicas need not wait for a Lease a
// killed process of an earlier test still holds, and meter from scratch.
func startAfresh(g Gomega) {
	for _, component := range []string{"replicator", "metering"} {
		l := &coordinationv1.Lease{}
		l.Namespace, l.Name = releaseNamespace, "meshstack-operator-"+component
		g.Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), l))).To(Succeed())
	}
	resetCheckpoint(g)
}

// leaderAndStandby waits until one of the two replicas leads.
func leaderAndStandby(g Gomega, a, b *replica) (leading, standby *replica) {
	leading = leader(g, time.Minute, a, b)
	return leading, map[*replica]*replica{a: b, b: a}[leading]
}
