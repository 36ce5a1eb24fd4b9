"""Create the demo accounts and their subscriptions, and print them."""

from django.core.management.base import BaseCommand

from shop.demo import DEMO_PASSWORD, seed_demo_accounts, seed_demo_subscriptions


class Command(BaseCommand):
    help = (
        f"Create or repair the demo accounts alice and bob (customers) and admin "
        f"(staff superuser), all with the password {DEMO_PASSWORD!r}, and their "
        "subscriptions (test cards of the simulated gateway). The password is "
        "public on purpose: run this only on a demo, never on a shop with real "
        "customers."
    )

    def handle(self, *args, **options) -> None:
        accounts = seed_demo_accounts()
        self.stdout.write(f"demo accounts, password {DEMO_PASSWORD!r} (public):")
        for account in accounts:
            role = "staff superuser" if account.is_staff else "customer"
            self.stdout.write(f"  {account.username:<8}{account.email:<22}{role}")
        subscriptions = seed_demo_subscriptions()
        self.stdout.write("demo subscriptions (simulated gateway, test cards):")
        for subscription in subscriptions:
            self.stdout.write(
                f"  {subscription.customer!s:<8}{subscription.plan:<20}"
                f"{subscription.amount:>7}  card ...{subscription.card_last4}  "
                f"next due {subscription.current_period_start}"
            )
