"""The instruments of a bench run: identity, connection, last readings, compliance, counters,
and the safety limits in force (read-only).

Everything shown comes from the run's records, so it works for a run in another process too:
the start document's rig description (identities, wiring, limits: drivers/bench/report.py) and
the newest 'instruments' event (Rig.health). Keys a bench reports beyond the known ones (fault
or retry counters) get columns of their own.
"""

from __future__ import annotations

from PySide6 import QtGui, QtWidgets

from gui.quantities import si
from gui.runstate import RunState

KNOWN = ("connected", "role", "output_on", "output_volts", "output_amps", "last_volts", "last_amps",
         "in_compliance", "exchanges", "last_scan_channels", "last_scan_max_abs_volts", "codes_held", "codes_range",
         "safe_state_failure")
COLUMNS = ["instrument", "kind", "identity", "wired to", "connection", "output", "last reading", "compliance",
           "exchanges"]
LIMIT_UNITS = {"max_volts": "V", "max_amps": "A", "max_watts": "W", "ramp_volts": "V", "ramp_amps": "A",
               "compliance_amps": "A", "compliance_volts": "V", "timeout_s": "s", "heartbeat_s": "s"}
ALERT = QtGui.QColor(255, 205, 205)
GOOD = QtGui.QColor(215, 240, 215)


def _limit_text(limits: dict) -> str:
    parts = []
    for key, value in limits.items():
        if value is None:
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key in LIMIT_UNITS:
            parts.append(f"{key} {si(float(value), LIMIT_UNITS[key])}")
        else:
            parts.append(f"{key} {value}")
    return ", ".join(parts)


def _output(health: dict) -> str:
    """'off', '1.37 µA', '0.4 V', or '' for an instrument that sources nothing."""
    if "output_on" not in health:
        return ""
    if health["output_on"] is None:
        return "unknown (re-established at the next change)"
    if not health["output_on"]:
        return "off"
    if health.get("output_amps") is not None:
        return f"on, {si(health['output_amps'], 'A')}"
    return f"on, {si(health.get('output_volts'), 'V')}"


def _compliance(health: dict) -> str:
    if health.get("in_compliance") is not None:
        return "IN COMPLIANCE" if health["in_compliance"] else "ok"
    if health.get("role") == "output" and health.get("output_on") and health.get("output_amps") is not None:
        return "by the scan"  # a current-sourcing output is judged by the voltage the scan reads
    return ""


def _reading(health: dict) -> str:
    if "last_volts" in health or "last_amps" in health:
        if health.get("last_volts") is None and health.get("last_amps") is None:
            return "none yet"
        return f"{si(health.get('last_volts'), 'V')}, {si(health.get('last_amps'), 'A')}"
    if "last_scan_channels" in health:
        if not health["last_scan_channels"]:
            return "no scan yet"
        return f"{health['last_scan_channels']} channels, |v| ≤ {si(health.get('last_scan_max_abs_volts'), 'V')}"
    if "codes_held" in health:
        span = health.get("codes_range")
        return f"{health['codes_held']} codes held" + (f" ({span[0]}..{span[1]})" if span else "")
    return ""


class InstrumentsPanel(QtWidgets.QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.heading = QtWidgets.QLabel("No run: open or start a bench run to see its instruments.")
        self.heading.setWordWrap(True)
        self.table = QtWidgets.QTableWidget(0, len(COLUMNS))
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.limits_heading = QtWidgets.QLabel("<b>Safety limits in force</b> (read-only, from the bench file)")
        self.limits = QtWidgets.QTableWidget(0, 2)
        self.limits.setHorizontalHeaderLabels(["instrument or bench", "limits"])
        self.limits.setEditTriggers(QtWidgets.QAbstractItemView.NoEditTriggers)
        self.limits.verticalHeader().setVisible(False)
        self.limits.horizontalHeader().setStretchLastSection(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.table, 3)
        layout.addWidget(self.limits_heading)
        layout.addWidget(self.limits, 2)

    def redraw(self, state: RunState) -> None:
        rig = state.rig
        if not rig:
            self.heading.setText("No run: open or start a bench run to see its instruments.")
            self._fill([], [])
            return
        if rig.get("kind") != "bench":
            self.heading.setText(f"This run is on {rig.get('description', 'the simulated rig')}: it has no "
                                 "instruments. Bench runs (hwlearn gui EXPERIMENT --bench BENCH) show theirs here.")
            self._fill([], [])
            return
        setup = rig.get("setup") or {name: {"identity": ident} for name, ident in rig.get("instruments", {}).items()}
        health = state.instruments
        when = (f" ({state.instruments_note} at step {state.instruments_step})" if state.instruments_step is not None
                else f" ({state.instruments_note})" if state.instruments_note else "")
        if not health:
            when = " (no instrument states recorded yet)"
        self.heading.setText(f"<b>{rig.get('description', 'bench')}</b>{when}")
        extra = sorted({key for h in health.values() for key in h if key not in KNOWN})
        rows = []
        for name, info in setup.items():
            h = health.get(name, {})
            connected = h.get("connected")
            compliance = h.get("in_compliance")
            kind = " ".join(filter(None, [info.get("kind"), f"({info['driver']})" if info.get("driver") else ""]))
            row = [name, kind, info.get("identity") or "", ", ".join(info.get("wired", [])),
                   "" if connected is None else ("connected" if connected else "closed"),
                   _output(h), _reading(h), _compliance(h), str(h.get("exchanges", ""))]
            row += [str(h.get(key, "")) for key in extra]
            alerts = {4: connected is False, 7: bool(compliance)}
            if h.get("safe_state_failure"):
                row[5] = f"{row[5]}; {h['safe_state_failure']}".strip("; ")
                alerts[5] = True
            rows.append((row, alerts))
        self._fill(COLUMNS + extra, rows)
        limits = [("bench", _limit_text(rig.get("limits", {})))]
        limits += [(name, _limit_text(info.get("limits", {}))) for name, info in setup.items()]
        self.limits.setRowCount(len(limits))
        for r, (who, text) in enumerate(limits):
            self.limits.setItem(r, 0, QtWidgets.QTableWidgetItem(who))
            self.limits.setItem(r, 1, QtWidgets.QTableWidgetItem(text))
        self.limits.resizeColumnToContents(0)

    def _fill(self, columns: list[str], rows: list) -> None:
        if columns:
            self.table.setColumnCount(len(columns))
            self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(rows))
        for r, (row, alerts) in enumerate(rows):
            for c, text in enumerate(row):
                item = QtWidgets.QTableWidgetItem(text)
                if alerts.get(c):
                    item.setBackground(ALERT)
                elif c == 7 and text == "ok":
                    item.setBackground(GOOD)
                self.table.setItem(r, c, item)
        if not rows:
            self.limits.setRowCount(0)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
