package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// BenchmarkAdminAPI measures the management API's user routes through real
// HTTP with 100,000 users in the store (the targets: search first
// page ≤ 20 ms p50, user detail ≤ 5 ms, on one core). Run with
//
//	go test ./cmd/keyport -run '^$' -bench AdminAPI -benchtime 200x -cpu 1
//
// Each sub-benchmark reports its p50 and p95 besides ns/op.
func BenchmarkAdminAPI(b *testing.B) {
	const users = 100_000
	srv := startServerWith(b, serverOptions{})
	ctx := context.Background()
	admin := srv.createUser("root", true)
	token, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, admin, account.NewAPIToken{Name: "bench", Scope: account.ScopeReadOnly})
	if err != nil {
		b.Fatal(err)
	}
	// A realistic spread: names from a few lists, every 50th blocked, a
	// group for every 200th, some signed in.
	first := []string{"anna", "ben", "clara", "david", "emma", "felix", "greta", "hans", "ida", "jonas", "käthe", "lukas", "marie", "noah", "olga", "paul"}
	last := []string{"müller", "schmidt", "schneider", "fischer", "weber", "meyer", "wagner", "becker", "schulz", "hoffmann", "koch", "richter"}
	start := time.Now().Add(-365 * 24 * time.Hour)
	var target string
	for batch := 0; batch < users/10_000; batch++ {
		us := make([]storage.User, 0, 10_000)
		for i := batch * 10_000; i < (batch+1)*10_000; i++ {
			f, l := first[i%len(first)], last[(i/len(first))%len(last)]
			u := storage.User{
				ID: fmt.Sprintf("u%06d", i), Username: fmt.Sprintf("%s.%s%d", f, l, i), Email: fmt.Sprintf("%s.%s%d@example.com", f, l, i),
				Name: strings.ToUpper(f[:1]) + f[1:] + " " + l, PhoneNumber: fmt.Sprintf("+49 170 %07d", i),
				CreatedAt: start.Add(time.Duration(i) * time.Minute), UpdatedAt: start, Blocked: i%50 == 0,
			}
			if i%200 == 0 {
				u.Groups = []string{"staff"}
			}
			if i%3 == 0 {
				u.LastLogin = start.Add(time.Duration(i*7%users) * time.Minute)
			}
			us = append(us, u)
		}
		if err := srv.Main.Store.CreateUsers(ctx, us); err != nil {
			b.Fatal(err)
		}
	}
	target = "u042042"
	client := newBenchClient()
	get := func(path string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", path, resp.Status)
		}
	}
	for _, c := range []struct{ name, path string }{
		{"search/first-page", "/api/v1/users"},
		{"search/by-last-sign-in", "/api/v1/users?sort=last_sign_in"},
		{"search/text-many", "/api/v1/users?q=M%C3%9CLLER"},
		{"search/text-one", "/api/v1/users?q=emma.koch42"},
		{"search/text-none", "/api/v1/users?q=zzzz"},
		{"search/group", "/api/v1/users?group=staff"},
		{"search/blocked-text", "/api/v1/users?blocked=true&q=weber"},
		{"detail", "/api/v1/users/" + target},
	} {
		b.Run(c.name, func(b *testing.B) {
			get(c.path) // warm the connection
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for range b.N {
				t0 := time.Now()
				get(c.path)
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
