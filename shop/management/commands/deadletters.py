"""List, replay or purge dead letters (shop/deadletters.py)."""

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from shop import deadletters


def _age(value: str) -> timedelta:
    """Parse an age such as 30m, 12h or 7d."""
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit():
        raise ValueError("an age is a number and m, h or d: 30m, 12h, 7d")
    return timedelta(**{units[value[-1]]: int(value[:-1])})


class Command(BaseCommand):
    help = "List, replay or purge the tasks that gave up, filtered by task, queue, age."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["list", "replay", "purge"])
        parser.add_argument("--task", help="full task name")
        parser.add_argument("--queue", help="queue name")
        parser.add_argument(
            "--older-than", metavar="AGE", help="only letters older than 30m, 12h, 7d"
        )

    def handle(self, *args, action: str, **options) -> None:
        try:
            older_than = _age(options["older_than"]) if options["older_than"] else None
        except ValueError as error:
            raise CommandError(str(error)) from error
        letters = deadletters.select(
            task=options["task"],
            queue=options["queue"],
            older_than=older_than,
            include_replayed=action == "purge",
        )
        if action == "list":
            for letter in letters:
                self.stdout.write(
                    f"{letter.pk}\t{letter.failed_at:%Y-%m-%d %H:%M:%S}\t"
                    f"{letter.queue}\t{letter.task_name}\tattempts={letter.attempts}"
                    f"\t{letter.exception.splitlines()[0][:100]}"
                )
            self.stdout.write(f"{letters.count()} dead letters")
        elif action == "replay":
            sent = [
                task_id for letter in letters if (task_id := deadletters.replay(letter))
            ]
            self.stdout.write(f"{len(sent)} dead letters replayed")
        else:
            deleted, _ = letters.delete()
            self.stdout.write(f"{deleted} dead letters purged")
