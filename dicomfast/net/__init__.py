"""DICOM networking (PS3.7, PS3.8): upper layer, associations, DIMSE, C-ECHO, C-STORE.

    >>> from dicomfast.net import AE
    >>> AE("MYSCU").echo("127.0.0.1", 11112, called_ae="STORESCP")
    0

Not imported by ``import dicomfast``; import it when you need the network.
"""

from dicomfast.net.ae import AE, BackgroundServer, StorageServer, is_storage_sop_class
from dicomfast.net.association import (
    AcceptedContext,
    AcceptorPolicy,
    Association,
    AssociationAborted,
    AssociationRejected,
    Server,
    Settings,
)
from dicomfast.net.dimse import status_category
from dicomfast.net.services.storage import StorageSCP, StoredObject
from dicomfast.net.services.storescu import StoreResult
from dicomfast.net.transport import DICOM_TLS_PORT

__all__ = [
    "AE",
    "AcceptedContext",
    "AcceptorPolicy",
    "Association",
    "AssociationAborted",
    "AssociationRejected",
    "BackgroundServer",
    "DICOM_TLS_PORT",
    "Server",
    "Settings",
    "StorageSCP",
    "StorageServer",
    "StoreResult",
    "StoredObject",
    "is_storage_sop_class",
    "status_category",
]
