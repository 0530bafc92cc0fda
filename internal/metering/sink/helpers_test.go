package sink

import "github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"

// The times the tests share (see package meteringtest).
var (
	t0    = meteringtest.T0
	every = meteringtest.Every
)

const gi = meteringtest.Gi
