package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/keyport/keyport/storage"
)

// sweepStep deletes one kind of expired record as of now and counts it
// in rep.
type sweepStep func(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error

// sweepSteps are what Sweep runs, one statement (and so one short
// transaction) each. An area with records that expire adds its step here.
var sweepSteps = []sweepStep{
	sweepReservedNames,
	sweepCredentials,
	sweepSessions,
	sweepOneTimeTokens,
	sweepLoginAttempts,
	sweepThrottles,
	sweepOutbox,
	sweepTokens,
	sweepSeals,
	sweepAuthRequests, // their codes go by the foreign key
	sweepRedeemedCodes,
	sweepDeviceAuthorizations,
}

// Sweep deletes what has expired as of now.
func (d *DB) Sweep(ctx context.Context) (storage.SweepReport, error) {
	now := d.now()
	var rep storage.SweepReport
	for _, step := range sweepSteps {
		if err := step(ctx, d.pool, now, &rep); err != nil {
			return rep, fmt.Errorf("sweep: %w", err)
		}
	}
	return rep, nil
}
