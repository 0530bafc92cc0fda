package framework

import "time"

// The timeouts of the envtest suites (test/integration/..., test/faults,
// test/e2e). Each suite makes Timeout and PollInterval its Eventually
// defaults (SetDefaultEventuallyTimeout, SetDefaultEventuallyPollingInterval
// in its suite_test.go) and names SlowTimeout where a step waits for a
// process to start. A bound that is itself what a spec proves (a takeover
// within 25 s, 500 projects within 2 minutes) stays a named constant of its
// spec: it is a claim about the operator, not a patience setting.
const (
	// Timeout is how long a spec waits for the operator to react to one
	// change when it already runs: a reconcile and the writes it makes, a
	// metering pass, a policy that takes effect. Such a reaction takes well
	// under a second; 30 s covers a 2-core CI machine that runs kube-apiserver,
	// etcd and the operator while the Go build cache is cold, and a retry after
	// a conflict, without letting a stuck spec hang for minutes.
	Timeout = 30 * time.Second

	// PollInterval is how often Eventually looks again. Against a local
	// kube-apiserver a Get or List costs about a millisecond, so 50 ms keeps
	// the measured latencies (a takeover, a restart) within 50 ms of the truth
	// at a few percent of one core.
	PollInterval = 50 * time.Millisecond

	// SlowTimeout is how long a spec waits for an operator process to come
	// up: a started or restarted binary syncing its informers, acquiring a
	// Lease another process held (the chart's lease is 15 s, plus its 2 s
	// retry period) and becoming ready, or helm installing the chart. A
	// minute is that worst case, about 20 s, three times over.
	SlowTimeout = time.Minute
)
