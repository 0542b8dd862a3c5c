"""The Odoo connector: odoorpc (JSON-RPC, Odoo <= 18) and JSON-2 over httpx (Odoo 19+).

Configuration comes from the environment only (`SITEOPS_ODOO_URL`, `SITEOPS_ODOO_DB`,
`SITEOPS_ODOO_LOGIN`, `SITEOPS_ODOO_PASSWORD` or `SITEOPS_ODOO_PASSWORD_FILE`,
`SITEOPS_ODOO_API_KEY`, `SITEOPS_ODOO_PROTOCOL`=auto|jsonrpc|json2, optional
`SITEOPS_ODOO_TIMEOUT` and `SITEOPS_ODOO_VERSION`). Errors are only those of
`siteops.connectors.errors`.
"""

from siteops.connectors.odoo.client import OdooClient, get_client, reset_client
from siteops.connectors.odoo.config import OdooConfig

__all__ = ["OdooClient", "OdooConfig", "get_client", "reset_client"]
