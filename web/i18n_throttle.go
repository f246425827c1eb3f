package web

// deThrottle is German for the answers to refused attempts (retry.go).
var deThrottle = map[string]string{
	"Too many failed sign-in attempts.":                              "Zu viele fehlgeschlagene Anmeldeversuche.",
	"Too many wrong codes.":                                          "Zu viele falsche Codes.",
	"Too many sign-ins are under way. Please try again in a minute.": "Gerade laufen zu viele Anmeldungen. Bitte versuchen Sie es in einer Minute erneut.",
	"Too many failed attempts.":                                      "Zu viele fehlgeschlagene Versuche.",
	"Too many sign-ins are being checked right now.":                 "Gerade werden zu viele Anmeldungen geprüft.",
	"Please try again in %s.":                                        "Bitte versuchen Sie es in %s erneut.",
	"1 second":                                                       "1 Sekunde",
	"%d seconds":                                                     "%d Sekunden",
	"1 minute":                                                       "1 Minute",
	"%d minutes":                                                     "%d Minuten",
	"1 hour":                                                         "1 Stunde",
	"%d hours":                                                       "%d Stunden",
}
