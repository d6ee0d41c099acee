"""A stand-in for `sacctmgr` that answers the backend's commands as Slurm 22.05 does: it
keeps QOS, accounts and users, lowercases descriptions and turns quotes into backticks,
exits 1 with "Nothing new added" / "Nothing modified" / "Nothing deleted" when there is
nothing to do, and can refuse `gres/gpu` until the controller has registered it, or fail a
chosen command once (a dropped connection)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from typing import Any

from allocations.backends.slurm import SlurmBackend

Command = list[str]


def _answer(command: Command, code: int = 0, out: str = "", err: str = "") -> Any:
    return subprocess.CompletedProcess(command, code, out, err)


def _pairs(words: list[str]) -> dict[str, str]:
    return {key.lower(): value for key, _, value in (word.partition("=") for word in words)}


def _tres(value: str) -> int:
    name, _, amount = value.partition("=")
    assert name == "gres/gpu", value
    return int(amount)


class FakeSlurm:
    def __init__(self) -> None:
        self.qos: dict[str, dict[str, Any]] = {}
        self.accounts: dict[str, dict[str, Any]] = {}
        self.writes: list[Command] = []
        self.reads = 0
        self.unknown_gpu_tres = 0  # QOS writes refused before gres/gpu is registered
        self.fail_once: Callable[[Command], bool] | None = None
        self.broken = False  # every write fails

    def __call__(self, command: Command) -> Any:
        assert command[0] in ("sacctmgr", "sacct"), command
        if command[1] == "-nP":
            self.reads += 1
            return self._show(command)
        assert command[1] == "-i", command
        self.writes.append(command)
        if self.broken or (self.fail_once is not None and self.fail_once(command)):
            self.fail_once = None
            return _answer(command, 1, err="sacctmgr: error: Problem talking to the database")
        verb, kind = command[2], command[3]
        handler = getattr(self, f"_{verb}_{kind}")
        return handler(command)

    # -- reading -------------------------------------------------------------------------
    def _show(self, command: Command) -> Any:
        where = _pairs([word for word in command if "=" in word and not word.startswith("format")])
        lines = []
        if command[3] == "qos":
            for name, qos in sorted(self.qos.items()):
                if where.get("name", name) != name:
                    continue
                minutes = f"gres/gpu={qos['mins']}" if qos["mins"] is not None else ""
                cap = f"gres/gpu={qos['cap']}" if qos["cap"] is not None else ""
                lines.append(f"{name}|{','.join(sorted(qos['flags']))}|{minutes}|{cap}")
        else:
            for name, account in sorted(self.accounts.items()):
                if where.get("name", name) != name:
                    continue
                qos = ",".join(sorted(account["qos"]))
                lines.append(f"{name}|{account['descr']}||{qos}|{account['default']}")
                for user, user_qos in sorted(account["users"].items()):
                    joined = ",".join(sorted(user_qos))
                    lines.append(f"{name}|{account['descr']}|{user}|{joined}|{account['default']}")
        return _answer(command, out="".join(f"{line}\n" for line in lines))

    # -- writing -------------------------------------------------------------------------
    def _qos_settings(self, qos: dict[str, Any], values: dict[str, str]) -> None:
        if "flags" in values:
            qos["flags"] = {values["flags"]}
        if "grptresmins" in values:
            qos["mins"] = _tres(values["grptresmins"])
        if "grptres" in values:
            cap = _tres(values["grptres"])
            qos["cap"] = None if cap == -1 else cap

    def _refuses_gpu(self, command: Command) -> Any:
        if self.unknown_gpu_tres > 0 and any("gres/gpu" in word for word in command):
            self.unknown_gpu_tres -= 1
            return _answer(
                command,
                1,
                err="sacctmgr: error: slurmdb_format_tres_str: no TRES known by type gres/gpu",
            )
        return None

    def _add_qos(self, command: Command) -> Any:
        if refused := self._refuses_gpu(command):
            return refused
        name = command[4]
        if name in self.qos:
            return _answer(command, 1, out=" Nothing new added.\n")
        self.qos[name] = {"flags": set(), "mins": None, "cap": None}
        self._qos_settings(self.qos[name], _pairs(command[5:]))
        return _answer(command, out=f" Adding QOS(s)\n  {name}\n")

    def _modify_qos(self, command: Command) -> Any:
        if refused := self._refuses_gpu(command):
            return refused
        split = command.index("set")
        name = _pairs(command[5:split])["name"]
        if name not in self.qos:
            return _answer(command, 1, out=" Nothing modified\n")
        self._qos_settings(self.qos[name], _pairs(command[split + 1 :]))
        return _answer(command, out=f" Modified qos...\n  {name}\n")

    def _add_account(self, command: Command) -> Any:
        name, values = command[4], _pairs(command[5:])
        if name in self.accounts:
            return _answer(command, 1, out=" Nothing new added.\n")
        description = values["description"].lower().replace("'", "`").replace('"', "`")
        self.accounts[name] = {
            "descr": description,
            "qos": set(values["qos"].split(",")),
            "default": values["defaultqos"],
            "users": {},
        }
        return _answer(command, out=f" Adding Account(s)\n  {name}\n")

    def _modify_account(self, command: Command) -> Any:
        split = command.index("set")
        name = _pairs(command[5:split])["name"]
        values = _pairs(command[split + 1 :])
        account = self.accounts[name]
        if "description" in values:
            account["descr"] = values["description"].lower()
        if "qos" in values:
            account["qos"] = set(values["qos"].split(","))
            account["default"] = values["defaultqos"]
            for user in account["users"]:
                account["users"][user] = set(account["qos"])
        return _answer(command, out=" Modified accounts...\n")

    def _add_user(self, command: Command) -> Any:
        values = _pairs(command[5:])
        account = self.accounts[values["account"]]
        new = [name for name in command[4].split(",") if name not in account["users"]]
        if not new:
            return _answer(command, 1, out=" Nothing new added.\n")
        for name in new:
            account["users"][name] = set(account["qos"])
        return _answer(command, out=" Adding User(s)\n")

    def _modify_user(self, command: Command) -> Any:
        split = command.index("set")
        where = _pairs(command[5:split])
        account = self.accounts[where["account"]]
        for name in where["name"].split(","):
            account["users"][name] = set(_pairs(command[split + 1 :])["qos"].split(","))
        return _answer(command, out=" Modified user associations...\n")

    def _remove_user(self, command: Command) -> Any:
        where = _pairs(command[5:])
        account = self.accounts[where["account"]]
        gone = [name for name in where["name"].split(",") if account["users"].pop(name, None)]
        if not gone:
            return _answer(command, 1, out=" Nothing deleted\n")
        return _answer(command, out=" Deleting user associations...\n")


class SimulatedSlurm(SlurmBackend):
    """The Slurm backend against the fake sacctmgr of the running test (`fake_slurm`)."""

    fake = FakeSlurm()

    def __init__(self) -> None:
        super().__init__(runner=SimulatedSlurm.fake)
        self.sleep = lambda seconds: None
