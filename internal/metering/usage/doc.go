// Package usage turns pods and PersistentVolumeClaims into per-namespace
// usage and usage records: the aggregation of passes into windows (which
// part of a pod's life a pass bills, effective requests and limits,
// extended resources, bounds on quantities), the record schema, its ids
// and its JSON Lines encoding.
//
// It is pure: it does no I/O, holds no client and reads no clock (the
// caller says when each pass happened), so its tests drive it with fixed
// times. Listing, keeping and delivering usage is the business of packages
// metering, checkpoint and sink.
package usage
