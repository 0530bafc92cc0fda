package faults

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
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
	probes, err := framework.FreeAddress()
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

// startReplica launches a replica that is stopped when the spec ends, and
// whose log the spec shows when it fails.
func startReplica(component, name string, extra ...string) *replica {
	GinkgoHelper()
	r, err := launch(GinkgoT().TempDir(), component, name, extra...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		_ = r.Stop()
		logTail(r)
	})
	return r
}

// logTail shows the end of a replica's log when the spec failed, each line
// cut short.
func logTail(r *replica) {
	if !CurrentSpecReport().Failed() {
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
	framework.Logf("%s (%s), last %d of %d lines:\n%s", r, r.log, len(tail), len(lines), strings.Join(tail, "\n"))
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
func leader(within time.Duration, replicas ...*replica) *replica {
	GinkgoHelper()
	var found *replica
	Eventually(func(g Gomega) {
		var leaders []*replica
		for _, r := range replicas {
			if r.running() && r.leads() {
				leaders = append(leaders, r)
			}
		}
		g.Expect(leaders).To(HaveLen(1), "replicas leading")
		found = leaders[0]
	}, within).Should(Succeed())
	return found
}

// expectReady waits until every replica is ready, standbys included.
func expectReady(replicas ...*replica) {
	GinkgoHelper()
	for _, r := range replicas {
		Eventually(r.ready, framework.SlowTimeout).Should(BeTrue(), "%s is never ready", r)
	}
}

// lease is the component's Lease, as the chart's Deployments elect a leader
// (--leader-election-id defaults to meshstack-operator-<component>).
func lease(g Gomega, component string) *coordinationv1.Lease {
	var l coordinationv1.Lease
	key := client.ObjectKey{Namespace: releaseNamespace, Name: "meshstack-operator-" + component}
	g.Expect(fw.Client.Get(context.Background(), key, &l)).To(Succeed())
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

// runPod starts the pod; it stops when the spec ends.
func runPod(component, name string, extra ...string) *pod {
	GinkgoHelper()
	p := &pod{cancel: make(chan struct{}), done: make(chan struct{})}
	dir := GinkgoT().TempDir()
	first, err := launch(dir, component, name+"-0", extra...)
	Expect(err).NotTo(HaveOccurred())
	p.runs = append(p.runs, first)
	go func() {
		defer GinkgoRecover()
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
				Fail(fmt.Sprintf("restarting %s: %v", name, err))
			}
			current = next
			p.mu.Lock()
			p.runs = append(p.runs, current)
			p.mu.Unlock()
		}
	}()
	DeferCleanup(func() {
		p.stop()
		for _, r := range p.replicas() {
			logTail(r)
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

// httpStatus is the status of a GET, 0 when it fails.
func httpStatus(url string) int {
	_, status := httpGet(url)
	return status
}

func httpGet(url string) (string, int) {
	c := &http.Client{Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return "", 0
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", 0
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(resp.Body)
	return string(data), resp.StatusCode
}

// startAfresh deletes both components' Leases and the metering
// checkpoint, so that a test's first replicas need not wait for a Lease a
// killed process of an earlier test still holds, and meter from scratch.
func startAfresh() {
	GinkgoHelper()
	for _, component := range []string{"replicator", "metering"} {
		l := &coordinationv1.Lease{}
		l.Namespace, l.Name = releaseNamespace, "meshstack-operator-"+component
		Expect(client.IgnoreNotFound(fw.Client.Delete(context.Background(), l))).To(Succeed())
	}
	resetCheckpoint()
}

// leaderAndStandby waits until one of the two replicas leads.
func leaderAndStandby(a, b *replica) (leading, standby *replica) {
	GinkgoHelper()
	leading = leader(framework.SlowTimeout, a, b)
	return leading, map[*replica]*replica{a: b, b: a}[leading]
}
