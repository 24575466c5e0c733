package spec

import "net/url"

// RedactURL returns a list URL fit to be shown (API, status page, readyz,
// logs, metric labels, `jurisdns lists`): its user name and password and
// its query string, which commonly carry credentials (?api_key=, ?token=),
// are replaced by "REDACTED", and the fragment is dropped. A URL with none
// of those is returned as written.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	if u.User == nil && u.RawQuery == "" && !u.ForceQuery && u.Fragment == "" {
		return raw
	}
	return redacted(*u)
}

// redacted is u with its credentials and query string replaced by
// "REDACTED" and its fragment dropped.
func redacted(u url.URL) string {
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" || u.ForceQuery {
		u.RawQuery, u.ForceQuery = "REDACTED", false
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}
