package metering

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metrics on the manager's /metrics endpoint.
var (
	lastSuccessTimestamp = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_last_success_timestamp_seconds",
		Help: "Unix time of the last metering pass that listed every pod.",
	})
	podsSeen = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_pods_seen",
		Help: "Pods listed by the last successful metering pass, in any phase.",
	})
	recordsEmitted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshstack_metering_records_emitted_total",
		Help: "Usage records delivered to the metering output.",
	})
	listErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshstack_metering_list_errors_total",
		Help: "Metering passes discarded because listing pods failed.",
	})
	pendingWindows = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_pending_windows",
		Help: "Closed metering windows not yet delivered to the output.",
	})
	oldestUndelivered = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_oldest_undelivered_window_timestamp_seconds",
		Help: "Unix time of the end of the oldest closed window not yet delivered; 0 when every closed window is delivered.",
	})
	checkpointErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "meshstack_metering_checkpoint_errors_total",
		Help: "Failed saves of the metering checkpoint (other than losing the leadership).",
	})
	passDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meshstack_metering_pass_duration_seconds",
		Help:    "Time a metering pass takes to list and aggregate every pod and write closed windows.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10ms to about 80s
	})
)

func init() {
	metrics.Registry.MustRegister(lastSuccessTimestamp, podsSeen, recordsEmitted, listErrors, passDuration,
		pendingWindows, oldestUndelivered, checkpointErrors)
}
