package main

import "net/http"

// strictTransport puts the Strict-Transport-Security header value on every
// response, the provider's and the portal's alike, before any handler can
// answer (an empty value adds nothing).
func strictTransport(value string, next http.Handler) http.Handler {
	if value == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Strict-Transport-Security", value)
		next.ServeHTTP(w, r)
	})
}
