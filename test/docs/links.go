// Package docs checks the repository's Markdown: every relative link, and
// every link into this repository on GitHub, must name a file that exists
// and, with an anchor, a heading or explicit anchor in it.
package docs

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// repoBlob is how the PrometheusRule and the docs link into this repository.
const repoBlob = "https://github.com/meshcloud/meshstack-operator/blob/main/"

var (
	linkRE     = regexp.MustCompile(`\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
	headingRE  = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)
	explicitRE = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)
	// GitHub keeps letters, digits, '_', '-' and spaces, then turns spaces into '-'.
	punctuationRE = regexp.MustCompile(`[^\p{L}\p{N}_\- ]`)
	// codeSpanRE matches inline code, whose brackets (regular expressions,
	// for example) are no links.
	codeSpanRE = regexp.MustCompile("`[^`]*`")
)

// Anchor is the anchor GitHub gives a heading's text.
func Anchor(heading string) string {
	return strings.ReplaceAll(punctuationRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(heading)), ""), " ", "-")
}

// Anchors are the anchors a Markdown text defines: its headings (outside code
// fences; a repeated heading gets -1, -2, …) and explicit <a id>/<a name>.
func Anchors(markdown string) map[string]bool {
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range explicitRE.FindAllStringSubmatch(line, -1) {
			anchors[m[1]] = true
		}
		m := headingRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		a := Anchor(m[1])
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors
}

// Links are the link targets of a Markdown text outside code fences.
func Links(markdown string) []string {
	var links []string
	fenced := false
	for _, line := range strings.Split(markdown, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(codeSpanRE.ReplaceAllString(line, ""), -1) {
			links = append(links, m[1])
		}
	}
	return links
}

// CheckLink returns why link, found in the file from (relative to root), is
// broken, or "" when it is fine. External links other than repoBlob are not
// fetched.
func CheckLink(root, from, link string) string {
	var target string
	switch {
	case strings.HasPrefix(link, repoBlob):
		target = strings.TrimPrefix(link, repoBlob)
	case strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:"):
		return ""
	case strings.HasPrefix(link, "#"):
		target = filepath.ToSlash(from) + link
	default:
		target = filepath.ToSlash(filepath.Join(filepath.Dir(from), link))
	}
	path, anchor, _ := strings.Cut(target, "#")
	data, err := os.ReadFile(filepath.Join(root, path))
	if err != nil {
		if info, serr := os.Stat(filepath.Join(root, path)); serr == nil && info.IsDir() && anchor == "" {
			return ""
		}
		return fmt.Sprintf("%s: no file %s", link, path)
	}
	if anchor == "" {
		return ""
	}
	if !strings.HasSuffix(path, ".md") {
		return fmt.Sprintf("%s: anchor into %s, which is not Markdown", link, path)
	}
	if !Anchors(string(data))[anchor] {
		return fmt.Sprintf("%s: no heading or anchor #%s in %s", link, anchor, path)
	}
	return ""
}

// runbookURL is the runbook_url the chart's alertMetadata template gives an
// alert for prometheusRule.runbookUrl base.
func runbookURL(base, alert string) string {
	if strings.Contains(base, "{alert}") {
		return strings.ReplaceAll(base, "{alert}", strings.ToLower(alert))
	}
	return base + "#" + strings.ToLower(alert)
}
