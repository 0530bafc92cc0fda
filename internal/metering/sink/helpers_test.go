package sink

import "github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"

// t0 is the start of a window in every table (see package meteringtest).
var t0 = meteringtest.T0
