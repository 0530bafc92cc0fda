package sink

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// StdoutOutput is the --metering-output value that writes to stdout.
const StdoutOutput = "-"

// IsHTTPOutput reports whether a --metering-output value is a URL, which
// selects the HTTP sink.
func IsHTTPOutput(output string) bool {
	o := strings.ToLower(output)
	return strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://")
}

// RedactOutput is a --metering-output value fit for logs and error
// messages: a URL (anything with "://") loses its user info (user name
// and password, either of which may be a secret), its query (which may
// carry ?token=...) and its fragment, each replaced by "xxxxx"; a URL
// that does not parse is replaced whole. A file path or "-" is returned
// as it is.
func RedactOutput(output string) string {
	if !strings.Contains(output, "://") {
		return output
	}
	u, err := url.Parse(output)
	if err != nil {
		return "(a --metering-output URL that does not parse)"
	}
	return redactURL(u)
}

func redactURL(u *url.URL) string {
	r := *u
	if r.User != nil {
		r.User = url.User("xxxxx")
	}
	if r.RawQuery != "" || r.ForceQuery {
		r.RawQuery, r.ForceQuery = "xxxxx", false
	}
	if r.Fragment != "" || r.RawFragment != "" {
		r.Fragment, r.RawFragment = "xxxxx", ""
	}
	return r.String()
}

// ValidateHTTPOutput checks a --metering-output URL: https:// to any host, or
// plain http:// to a loopback host only (127.0.0.0/8, ::1 or localhost), for
// tests and sidecars.
func ValidateHTTPOutput(rawURL string) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		// The error quotes the URL, which may hold a password.
		return fmt.Errorf("--metering-output is not a valid URL")
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("--metering-output %q must be an https:// URL", redactURL(u))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("--metering-output %q has no host", redactURL(u))
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return fmt.Errorf("--metering-output %q: plain http:// is allowed only to a loopback host (127.0.0.0/8, ::1, localhost); use https://", redactURL(u))
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
