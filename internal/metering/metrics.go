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
	checkpointSaveFailing = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_checkpoint_save_failing",
		Help: "1 while the last save of the metering checkpoint failed (closed windows are not delivered and nothing counted since the last good save is safe), 0 after a good save.",
	})
	checkpointRefused = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meshstack_metering_checkpoint_refused",
		Help: "1 while the metering leader refuses to meter from the checkpoint because its last pass lies in the future (clock skew or a forged checkpoint); it meters nothing meanwhile.",
	})
	invalidQuantities = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "meshstack_metering_invalid_quantities_total",
		Help: "Pod or claim quantities, per pass, that were counted as 0 because they are negative, not finite or above the bound (2^63 bytes, 2^63 millicores), by namespace and resource.",
	}, []string{"namespace", "resource"})
	passDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "meshstack_metering_pass_duration_seconds",
		Help:    "Time a metering pass takes to list and aggregate every pod and write closed windows.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 14), // 10ms to about 80s
	})
)

func init() {
	metrics.Registry.MustRegister(lastSuccessTimestamp, podsSeen, recordsEmitted, listErrors, passDuration,
		pendingWindows, oldestUndelivered, checkpointErrors, checkpointSaveFailing, checkpointRefused, invalidQuantities)
}
