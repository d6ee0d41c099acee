"""A small SMTP server in a thread of the test: it accepts every message, and holds its
answer to the first message's data until the client goes away, so that a test can SIGKILL
the worker that is sending it. A message counts as sent only once the server has answered
`250` to its data, as a real mail server would."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    data: str


@dataclass
class SmtpServer:
    hold_first: bool = True
    accepted: list[Mail] = field(default_factory=list)
    dropped: int = 0
    holding: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._held = False
        self._stopping = False
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        self._stopping = True
        self.listener.close()

    def _accept(self) -> None:
        while not self._stopping:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")

        def say(line: str) -> None:
            connection.sendall(f"{line}\r\n".encode())

        sender, recipients = "", []
        try:
            say("220 faults.example ESMTP")
            for raw in reader:
                line = raw.decode(errors="replace").rstrip("\r\n")
                verb = line.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    say("250 faults.example")
                elif verb == "MAIL":
                    sender, recipients = line.split(":", 1)[1].strip(), []
                    say("250 OK")
                elif verb == "RCPT":
                    recipients.append(line.split(":", 1)[1].strip().strip("<>"))
                    say("250 OK")
                elif verb == "DATA":
                    say("354 go ahead")
                    data = []
                    for part in reader:
                        if part in (b".\r\n", b".\n"):
                            break
                        data.append(part.decode(errors="replace"))
                    with self._lock:
                        hold = self.hold_first and not self._held
                        self._held = self._held or hold
                    if hold:
                        self.holding.set()
                        connection.settimeout(1)
                        while True:  # until the client goes away
                            try:
                                if connection.recv(1, socket.MSG_PEEK) == b"":
                                    raise ConnectionResetError
                            except TimeoutError:
                                continue
                    self.accepted.append(Mail(sender, list(recipients), "".join(data)))
                    say("250 queued")
                elif verb == "QUIT":
                    say("221 bye")
                    return
                else:
                    say("250 OK")
        except (OSError, ConnectionError):
            self.dropped += 1
        finally:
            connection.close()
