build-pre/obj/src/server/rootpath.o: src/server/rootpath.c \
 src/server/../util/util.h src/server/rootpath.h
src/server/../util/util.h:
src/server/rootpath.h:
