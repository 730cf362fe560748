package main

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
)

// fasthttpLogger is the server's Logger. fasthttp's messages about a
// connection it could not serve quote the client's bytes (an invalid header
// value, or up to 400 bytes of a request it could not parse), which may hold
// a bearer token or a password. It logs them at debug level with every
// quoted part but addresses replaced.
type fasthttpLogger struct{ log *slog.Logger }

// quotedRE matches a Go-quoted string, as %q writes it.
var quotedRE = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// addressRE matches a quoted IP address and port, which fasthttp's messages
// name the connection by.
var addressRE = regexp.MustCompile(`^"[0-9A-Fa-f.:\[\]]{1,64}"$`)

func (l fasthttpLogger) Printf(format string, args ...any) {
	if !l.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	l.log.Debug("fasthttp: " + redactQuoted(fmt.Sprintf(format, args...)))
}

// redactQuoted replaces each quoted string of msg but addresses with "…".
func redactQuoted(msg string) string {
	return quotedRE.ReplaceAllStringFunc(msg, func(q string) string {
		if addressRE.MatchString(q) {
			return q
		}
		return `"…"`
	})
}
