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
	"The cursor is not valid for this query. Start again from the first page.": "Der Cursor passt nicht zu dieser Abfrage. Beginne wieder mit der ersten Seite.",
	"Scripts and the command line reach the same functions through the management API, described at /api/v1/openapi.json.": "Skripte und die Kommandozeile erreichen dieselben Funktionen über die Verwaltungs-API, beschrieben unter /api/v1/openapi.json.",
}
