package checkpoint

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
)

// checkpointRecreated is on the manager's /metrics endpoint, with the
// metering metrics.
var checkpointRecreated = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "meshstack_metering_checkpoint_recreated_total",
	Help: "Checkpoint ConfigMaps that were deleted under the metering leader and created again from its state.",
})

func init() {
	metrics.Registry.MustRegister(checkpointRecreated)
}
