package web

// deConsole is German for the admin console's frame: its menu and the
// overview page.
var deConsole = map[string]string{
	"Administration":                 "Verwaltung",
	"Overview":                       "Übersicht",
	"Users":                          "Benutzer",
	"Apps":                           "Apps",
	"This credential may only read.": "Dieser Zugang darf nur lesen.",
	"Only administrators may read the audit log.":                              "Nur Administratoren dürfen das Audit-Protokoll lesen.",
	"The start of the time range must be before its end.":                      "Der Beginn des Zeitraums muss vor seinem Ende liegen.",
	"The actor is not a valid ID.":                                             "Der Handelnde ist keine gültige ID.",
	"The target user is not a valid ID.":                                       "Der betroffene Benutzer ist keine gültige ID.",
	"The cursor is not valid for this query. Start again from the first page.": "Der Cursor passt nicht zu dieser Abfrage. Beginnen Sie wieder mit der ersten Seite.",
	"Scripts and the command line reach the same functions through the management API, described at /api/v1/openapi.json.": "Skripte und die Kommandozeile erreichen dieselben Funktionen über die Verwaltungs-API, beschrieben unter /api/v1/openapi.json.",
}

// deConsoleAudit is German for the console's audit log page.
var deConsoleAudit = map[string]string{
	"Audit log": "Audit-Protokoll",
	"Security events and every administrator's action, newest first. Events are kept for the retention period set in config.toml ([audit] retention).": "Sicherheitsereignisse und jede Aktion von Administratoren, neueste zuerst. Ereignisse werden so lange aufbewahrt, wie in config.toml ([audit] retention) eingestellt.",
	"Event types (comma separated)": "Ereignistypen (durch Kommas getrennt)",
	"About user (ID)":               "Betroffener Benutzer (ID)",
	"By (user or app ID)":           "Von (Benutzer- oder App-ID)",
	"From":                          "Von",
	"Until":                         "Bis",
	"Search":                        "Suchen",
	"Export as JSON Lines":          "Als JSON Lines exportieren",
	"Event":                         "Ereignis",
	"By":                            "Durch",
	"About":                         "Betrifft",
	"Details":                       "Details",
	"app":                           "App",
	"Older events":                  "Ältere Ereignisse",
	"No events match.":              "Keine passenden Ereignisse.",
}
